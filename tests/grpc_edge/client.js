// A foreign gRPC client for the gRPC edge's tests: grpc-js's generic client, JSON bodies.
//
//   node client.js <target> <unary|server|client|bidi> <method> <request JSON> [metadata JSON] [deadline ms]
//
// <request JSON> is one message for unary and server calls, an array of messages for client
// and bidi calls. Every response message is printed as one JSON line; a failed call prints
// {"code": "<STATUS_NAME>", "details": "...", "micro_error": "..."} as its last line.
"use strict";

const grpc = require("@grpc/grpc-js");

const [target, shape, method, requestJson, metadataJson = "{}", deadlineMs = "10000"] =
  process.argv.slice(2);

const serialize = (obj) => Buffer.from(JSON.stringify(obj));
const deserialize = (buf) => JSON.parse(buf.toString());
const statusName = Object.fromEntries(Object.entries(grpc.status).map(([k, v]) => [v, k]));

const client = new grpc.Client(target, grpc.credentials.createInsecure());
const metadata = new grpc.Metadata();
for (const [key, value] of Object.entries(JSON.parse(metadataJson))) {
  metadata.set(key, key.endsWith("-bin") ? Buffer.from(value) : value);
}
const options = { deadline: new Date(Date.now() + Number(deadlineMs)) };
const request = JSON.parse(requestJson);

function print(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function done(err) {
  if (err) {
    const microError = err.metadata ? err.metadata.get("micro-error")[0] : undefined;
    print({ code: statusName[err.code], details: err.details, micro_error: microError });
  }
  client.close();
}

function answer(err, value) {
  if (!err) print(value);
  done(err);
}

function read(call) {
  call.on("data", print);
  call.on("error", done);
  call.on("end", () => done(null));
}

function write(call, messages) {
  for (const message of messages) call.write(message);
  call.end();
}

if (shape === "unary") {
  client.makeUnaryRequest(method, serialize, deserialize, request, metadata, options, answer);
} else if (shape === "server") {
  read(client.makeServerStreamRequest(method, serialize, deserialize, request, metadata, options));
} else if (shape === "client") {
  const call = client.makeClientStreamRequest(
    method, serialize, deserialize, metadata, options, answer);
  write(call, request);
} else if (shape === "bidi") {
  const call = client.makeBidiStreamRequest(method, serialize, deserialize, metadata, options);
  read(call);
  write(call, request);
} else {
  process.stderr.write(`unknown call shape ${shape}\n`);
  process.exit(2);
}
