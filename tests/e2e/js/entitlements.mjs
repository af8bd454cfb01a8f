// Drive the real AWS JS SDK v3 (@aws-sdk/client-marketplace-entitlement-service) for the e2e
// tests: GetEntitlementsCommand per job.
//
// stdin: a JSON array of jobs run in order in this one process:
//   {"endpoint"?: "http://127.0.0.1:PORT", "input": {...}, "region"?,
//    "credentials": {"accessKeyId", "secretAccessKey"}}
// Without "endpoint", the SDK resolves it itself (AWS_ENDPOINT_URL_MARKETPLACE_ENTITLEMENT_SERVICE
// or AWS_ENDPOINT_URL).
// stdout: one JSON line per job:
//   {"ok": true, "output": <output without $metadata, Dates as epoch seconds>}
//   {"ok": false, "name", "status", "message", "fault", "isTyped"}

import * as sdk from "@aws-sdk/client-marketplace-entitlement-service";

function plain(value) {
  if (value instanceof Date) return value.getTime() / 1000;
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    const out = {};
    for (const [key, item] of Object.entries(value)) {
      if (key !== "$metadata" && item !== undefined) out[key] = plain(item);
    }
    return out;
  }
  return value;
}

async function run(job) {
  const config = { region: job.region ?? "us-east-1", credentials: job.credentials, maxAttempts: 1 };
  if (job.endpoint) config.endpoint = job.endpoint;
  const client = new sdk.MarketplaceEntitlementServiceClient(config);
  try {
    const output = await client.send(new sdk.GetEntitlementsCommand(job.input));
    return { ok: true, output: plain(output) };
  } catch (err) {
    const Exported = Object.hasOwn(sdk, err?.name) ? sdk[err.name] : undefined;
    return {
      ok: false,
      name: err?.name,
      status: err?.$metadata?.httpStatusCode ?? null,
      message: err?.message,
      fault: err?.$fault ?? null,
      isTyped: typeof Exported === "function" && err instanceof Exported,
    };
  } finally {
    client.destroy();
  }
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
for (const job of JSON.parse(Buffer.concat(chunks).toString("utf8"))) {
  process.stdout.write(`${JSON.stringify(await run(job))}\n`);
}
