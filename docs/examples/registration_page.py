"""A seller's SaaS registration page, minimal: the other half of ``marketmeter subscribe``.

AWS Marketplace sends a new buyer's browser here with a form POST carrying
``x-amzn-marketplace-token``; the page resolves the token with ResolveCustomer (seller
credentials) and would then create the customer's account. This one answers with what it
learned and prints it.

    .venv/bin/python docs/examples/registration_page.py            # http://127.0.0.1:8000
    .venv/bin/marketmeter subscribe --product demo-saas-legacy --buyer 555566667777

Environment: ``MARKETMETER_URL`` (default http://127.0.0.1:8686), ``PORT`` (default 8000).
Only the standard library and boto3.
"""

from __future__ import annotations

import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import boto3
from botocore.exceptions import ClientError

METERING = boto3.client(
    "meteringmarketplace",
    endpoint_url=os.environ.get("MARKETMETER_URL", "http://127.0.0.1:8686"),
    region_name="us-east-1",
    aws_access_key_id="AKIAMMDEMOSELLER0001",  # the demo seller's key
    aws_secret_access_key="demo-seller-secret-do-not-use-in-production",
)


class RegistrationPage(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        token = form.get("x-amzn-marketplace-token", [""])[0]
        trial = form.get("x-amzn-marketplace-offer-type", [""])[0] == "free-trial"
        try:
            customer = METERING.resolve_customer(RegistrationToken=token)
        except ClientError as error:
            self._answer(400, f"registration refused: {error.response['Error']['Code']}\n")
            return
        lines = [
            "Welcome! Your subscription is set up." + (" (free trial)" if trial else ""),
            f"ProductCode={customer['ProductCode']}",
            f"CustomerAWSAccountId={customer['CustomerAWSAccountId']}",
            f"LicenseArn={customer['LicenseArn']}",
        ]
        if "CustomerIdentifier" in customer:  # legacy integrations only
            lines.append(f"CustomerIdentifier={customer['CustomerIdentifier']}")
        self._answer(200, "\n".join(lines) + "\n")

    def _answer(self, status: int, text: str) -> None:
        print(text, end="", flush=True)
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"registration page: {format % args}\n")


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8000"))
    server = ThreadingHTTPServer(("127.0.0.1", port), RegistrationPage)
    print(f"registration page at http://127.0.0.1:{port}/marketplace/register", flush=True)
    server.serve_forever()
