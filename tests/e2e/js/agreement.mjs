// Drive the real AWS JS SDK v3 (@aws-sdk/client-marketplace-agreement) for the e2e tests.
//
// stdin: a JSON array of jobs, run in order in this one process:
//   {"endpoint": "http://127.0.0.1:PORT", "operation": "DescribeAgreement", "input": {...},
//    "credentials": {"accessKeyId", "secretAccessKey"}}
// "operation" is any command the SDK exports as <operation>Command.
// stdout: one JSON line per job:
//   {"ok": true, "output": <output without $metadata, Dates as epoch seconds>}
//   {"ok": false, "name", "status", "message", "fault", "isTyped", "reason", "resourceId"}

import * as sdk from "@aws-sdk/client-marketplace-agreement";

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
  const client = new sdk.MarketplaceAgreementClient({
    region: job.region ?? "us-east-1",
    credentials: job.credentials,
    endpoint: job.endpoint,
    maxAttempts: 1,
  });
  const Command = sdk[`${job.operation}Command`];
  if (typeof Command !== "function") throw new Error(`unknown operation ${job.operation}`);
  try {
    return { ok: true, output: plain(await client.send(new Command(job.input ?? {}))) };
  } catch (err) {
    const Exported = Object.hasOwn(sdk, err?.name) ? sdk[err.name] : undefined;
    return {
      ok: false,
      name: err?.name,
      status: err?.$metadata?.httpStatusCode ?? null,
      message: err?.message,
      fault: err?.$fault ?? null,
      isTyped: typeof Exported === "function" && err instanceof Exported,
      reason: err?.reason ?? null,
      resourceId: err?.resourceId ?? null,
    };
  } finally {
    client.destroy();
  }
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

for (const job of JSON.parse(await readStdin())) {
  process.stdout.write(`${JSON.stringify(await run(job))}\n`);
}
