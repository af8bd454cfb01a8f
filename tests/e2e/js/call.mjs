// Drive the real AWS JS SDK v3 (@aws-sdk/client-marketplace-metering) for the e2e tests.
//
// stdin: one JSON job, or a JSON array of jobs run in order in this one process:
//   {"endpoint": "http://127.0.0.1:PORT", "operation": "MeterUsage", "input": {...},
//    "credentials": {"accessKeyId", "secretAccessKey", "sessionToken"?}, "region"?}
// "operation" is one of BatchMeterUsage, MeterUsage, ResolveCustomer, RegisterUsage (any
// command the SDK exports as <operation>Command). Without "credentials", the job signs with the
// test seller's key; a "sessionToken" is sent as X-Amz-Security-Token (the buyer's instance,
// task or pod). Without "endpoint", the SDK resolves the endpoint itself
// (AWS_ENDPOINT_URL_MARKETPLACE_METERING).
// Timestamps in the input (MeterUsage Timestamp, BatchMeterUsage UsageRecords[].Timestamp) are
// epoch seconds (numbers); they become Dates.
//
// With "captureBody": true, the result also has "body": the HTTP response body the SDK received
// (parsed JSON), read from the SDK's own request handler: it shows what is on the wire even
// where the SDK's model drops a member.
//
// stdout: one JSON line per job:
//   {"ok": true, "output": <output without $metadata, Dates as epoch seconds>}
//   {"ok": false, "name", "status", "message", "fault", "isTyped", "isServiceException"}
// "status" is $metadata.httpStatusCode and "fault" is $fault. "isTyped": the error is an
// instance of the SDK's exported exception class of that name; "isServiceException": it is an
// instance of MarketplaceMeteringServiceException (the base class the SDK uses for error codes
// that are not in the service model).

import { Readable } from "node:stream";

import * as sdk from "@aws-sdk/client-marketplace-metering";

const SELLER = {
  accessKeyId: "AKIATESTSELLER000001",
  secretAccessKey: "test-seller-secret",
};

function toDate(seconds) {
  return typeof seconds === "number" ? new Date(seconds * 1000) : seconds;
}

function prepareInput(operation, input) {
  const copy = structuredClone(input ?? {});
  if (operation === "BatchMeterUsage" && Array.isArray(copy.UsageRecords)) {
    for (const record of copy.UsageRecords) {
      if (record && "Timestamp" in record) record.Timestamp = toDate(record.Timestamp);
    }
  }
  if (operation === "MeterUsage" && "Timestamp" in copy) copy.Timestamp = toDate(copy.Timestamp);
  return copy;
}

function credentialsOf(job) {
  const given = job.credentials ?? SELLER;
  const credentials = {
    accessKeyId: given.accessKeyId,
    secretAccessKey: given.secretAccessKey,
  };
  if (given.sessionToken !== undefined && given.sessionToken !== null) {
    credentials.sessionToken = given.sessionToken;
  }
  return credentials;
}

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

// Wrap the client's request handler so that the response body is kept (and handed on to the
// SDK's deserializer unchanged). Returns a function giving the last body read, as text.
function captureBody(client) {
  const handler = client.config.requestHandler;
  const handle = handler.handle.bind(handler);
  let text = null;
  handler.handle = async (request, options) => {
    const result = await handle(request, options);
    const chunks = [];
    for await (const chunk of result.response.body) chunks.push(Buffer.from(chunk));
    const bytes = Buffer.concat(chunks);
    text = bytes.toString("utf8");
    result.response.body = Readable.from([bytes]);
    return result;
  };
  return () => text;
}

function parsedBody(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function run(job) {
  const config = {
    region: job.region ?? "us-east-1",
    credentials: credentialsOf(job),
    maxAttempts: 1,
  };
  if (job.endpoint) config.endpoint = job.endpoint;
  const client = new sdk.MarketplaceMeteringClient(config);
  const body = job.captureBody ? captureBody(client) : null;
  const Command = sdk[`${job.operation}Command`];
  if (typeof Command !== "function") throw new Error(`unknown operation ${job.operation}`);
  const withBody = (result) => (body ? { ...result, body: parsedBody(body()) } : result);
  try {
    const output = await client.send(new Command(prepareInput(job.operation, job.input)));
    return withBody({ ok: true, output: plain(output) });
  } catch (err) {
    const Exported = Object.hasOwn(sdk, err?.name) ? sdk[err.name] : undefined;
    return withBody({
      ok: false,
      name: err?.name,
      status: err?.$metadata?.httpStatusCode ?? null,
      message: err?.message,
      fault: err?.$fault ?? null,
      isTyped: typeof Exported === "function" && err instanceof Exported,
      isServiceException: err instanceof sdk.MarketplaceMeteringServiceException,
    });
  } finally {
    client.destroy();
  }
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

const parsed = JSON.parse(await readStdin());
for (const job of Array.isArray(parsed) ? parsed : [parsed]) {
  process.stdout.write(`${JSON.stringify(await run(job))}\n`);
}
