/**
 * Shared scaffolding for the API tests (test/api): an in-process HTTP app for `inject()`, a real
 * service on loopback port 0, gRPC clients built from the generated descriptors, and the JSON
 * normalisation that lets the two doors' answers be compared.
 */
import { expect } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import {
  fromJson,
  toJson,
  type DescMessage,
  type DescMethod,
  type DescService,
  type JsonValue,
} from '@bufbuild/protobuf';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { pino, type Logger } from 'pino';
import { AdminToken } from '../../src/api/auth.js';
import { serviceDefinition } from '../../src/api/grpc/codec.js';
import { Handlers } from '../../src/api/handlers.js';
import { buildHttpServer } from '../../src/api/http/server.js';
import { loadConfig } from '../../src/config.js';
import { ManualClock } from '../../src/engine/clock.js';
import { MemoryEngine } from '../../src/engine/memory/memory-engine.js';
import { startService, type RunningService } from '../../src/main.js';
import { SyncManager } from '../../src/sync/daemon.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export const silentLogger = (): Logger => pino({ level: 'silent' });

export const ONE_MIB = 1 << 20;

// ---------------------------------------------------------------------------------------------
// HTTP, in process

export interface TestApp {
  app: FastifyInstance;
  handlers: Handlers;
  engine: MemoryEngine;
  clock: ManualClock | undefined;
  /** Present with `syncRedisUrl`; close it when done. */
  sync: SyncManager | undefined;
}

export interface AppOptions {
  /** IPVS_ADMIN_TOKEN. */
  token?: string;
  /** Pass a ManualClock to the handlers (IPVS_CLOCK=manual); off by default. */
  manualClock?: boolean;
  bodyLimit?: number;
  /** SYNC_REDIS_URL: give the handlers a SyncManager on it (off by default). */
  syncRedisUrl?: string;
}

/** buildHttpServer + Handlers + MemoryEngine, the way startService wires them, without a socket. */
export function makeApp(options: AppOptions = {}): TestApp {
  const clock = options.manualClock ? new ManualClock(1_700_000_000_000) : undefined;
  const engine = new MemoryEngine({ clock: clock ?? { now: () => Date.now() } });
  const sync = options.syncRedisUrl
    ? new SyncManager({ engine, redisUrl: options.syncRedisUrl, logger: silentLogger() })
    : undefined;
  const handlers = new Handlers(engine, clock, sync);
  const app = buildHttpServer({
    handlers,
    token: new AdminToken(options.token),
    logger: silentLogger(),
    bodyLimit: options.bodyLimit ?? ONE_MIB,
  });
  return { app, handlers, engine, clock, sync };
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  /** Parsed JSON when the answer is JSON, else the raw text. */
  body: Json;
  text: string;
}

export interface SendOptions {
  /** A raw payload, sent as is (with `contentType`), instead of JSON. */
  raw?: string | Buffer;
  contentType?: string;
  headers?: Record<string, string>;
}

function answerOf(status: number, headers: HttpAnswer['headers'], text: string): HttpAnswer {
  const type = String(headers['content-type'] ?? '');
  let body: Json = text;
  if (type.startsWith('application/json') && text !== '') body = JSON.parse(text);
  return { status, headers, body, text };
}

/** `app.inject()` with a JSON body (or a raw one). */
export async function send(
  app: FastifyInstance,
  method: string,
  url: string,
  body?: unknown,
  options: SendOptions = {},
): Promise<HttpAnswer> {
  const request: InjectOptions = { method: method as InjectOptions['method'], url, headers: {} };
  const headers: Record<string, string> = { ...options.headers };
  if (options.raw !== undefined) {
    request.payload = options.raw;
    if (options.contentType) headers['content-type'] = options.contentType;
  } else if (body !== undefined) {
    request.payload = JSON.stringify(body);
    headers['content-type'] = options.contentType ?? 'application/json';
  }
  request.headers = headers;
  const res = await app.inject(request);
  return answerOf(res.statusCode, res.headers, res.body);
}

/** The same over a real socket (fetch). */
export async function fetchJson(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  options: SendOptions = {},
): Promise<HttpAnswer> {
  const headers: Record<string, string> = { ...options.headers };
  let payload: string | undefined;
  if (options.raw !== undefined) {
    payload = options.raw.toString();
    if (options.contentType) headers['content-type'] = options.contentType;
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers['content-type'] = options.contentType ?? 'application/json';
  }
  const res = await fetch(base + path, { method, headers, body: payload });
  const text = await res.text();
  return answerOf(res.status, Object.fromEntries(res.headers.entries()), text);
}

// ---------------------------------------------------------------------------------------------
// The real service

export interface TestService extends RunningService {
  httpBase: string;
  grpcAddress: string;
}

/** startService on 127.0.0.1, ports 0, silent logs; `env` adds variables (IPVS_CLOCK, ...). */
export async function startTestService(env: Record<string, string> = {}): Promise<TestService> {
  const config = loadConfig({
    HOST: '127.0.0.1',
    HTTP_PORT: '0',
    GRPC_PORT: '0',
    LOG_LEVEL: 'silent',
    ...env,
  });
  const running = await startService(config, silentLogger());
  return {
    ...running,
    httpBase: `http://127.0.0.1:${running.httpPort}`,
    grpcAddress: `127.0.0.1:${running.grpcPort}`,
  };
}

// ---------------------------------------------------------------------------------------------
// gRPC

type UnaryCallback = (err: grpc.ServiceError | null, response?: unknown) => void;
type UnaryFn = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: UnaryCallback,
) => grpc.ClientUnaryCall;
type ServerStreamFn = (
  request: unknown,
  metadata: grpc.Metadata,
  options?: grpc.CallOptions,
) => grpc.ClientReadableStream<unknown>;
type BidiFn = (
  metadata: grpc.Metadata,
  options?: grpc.CallOptions,
) => grpc.ClientDuplexStream<unknown, unknown>;

/** A grpc-js client for one of ipvs.v1's services, from the generated descriptor. */
export function grpcClient(desc: DescService, address: string): grpc.Client {
  const Client = grpc.makeGenericClientConstructor(serviceDefinition(desc), desc.name);
  return new Client(address, grpc.credentials.createInsecure());
}

export function bearer(token: string | undefined): grpc.Metadata {
  const md = new grpc.Metadata();
  if (token !== undefined) md.set('authorization', `Bearer ${token}`);
  return md;
}

export type UnaryResult = { ok: true; json: Json } | { ok: false; code: grpc.status; details: string };

/**
 * Calls a unary method with a request given in proto3 JSON; resolves with the answer as proto3 JSON
 * (`toJson`), or with the status code and details of a failure.
 */
export function unary(
  client: grpc.Client,
  method: DescMethod,
  request: JsonValue,
  metadata: grpc.Metadata = new grpc.Metadata(),
): Promise<UnaryResult> {
  const fn = (client as unknown as Record<string, UnaryFn>)[method.name].bind(client);
  const message = fromJson(method.input, request);
  return new Promise((resolve) => {
    fn(message, metadata, { deadline: Date.now() + 10_000 }, (err, response) => {
      if (err) resolve({ ok: false, code: err.code, details: err.details });
      else resolve({ ok: true, json: toJson(method.output, response as never) });
    });
  });
}

/** Like `unary`, but the call must succeed. */
export async function ok(
  client: grpc.Client,
  method: DescMethod,
  request: JsonValue,
  metadata?: grpc.Metadata,
): Promise<Json> {
  const result = await unary(client, method, request, metadata);
  if (!result.ok) {
    throw new Error(
      `${method.name} failed: ${grpc.status[result.code]} ${result.details} (request ${JSON.stringify(request)})`,
    );
  }
  return result.json;
}

export function serverStream(
  client: grpc.Client,
  method: DescMethod,
  request: JsonValue,
  metadata: grpc.Metadata = new grpc.Metadata(),
): grpc.ClientReadableStream<unknown> {
  const fn = (client as unknown as Record<string, ServerStreamFn>)[method.name].bind(client);
  return fn(fromJson(method.input, request), metadata);
}

export function bidiStream(
  client: grpc.Client,
  method: DescMethod,
  metadata: grpc.Metadata = new grpc.Metadata(),
): grpc.ClientDuplexStream<unknown, unknown> {
  const fn = (client as unknown as Record<string, BidiFn>)[method.name].bind(client);
  return fn(metadata);
}

// ---------------------------------------------------------------------------------------------
// Comparing the doors

/** An HTTP body read as the protobuf message it claims to be (strict: unknown fields fail). */
export function asMessage(schema: DescMessage, body: Json): Json {
  return toJson(schema, fromJson(schema, body as JsonValue));
}

/**
 * One comparable form for both doors: nulls and absent optional fields dropped, proto3 JSON's
 * uint64 strings turned back into numbers, key order irrelevant (deep equality).
 */
export function normalise(value: Json): Json {
  if (Array.isArray(value)) return value.map(normalise);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, Json> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v === null || v === undefined) continue;
      out[k] = normalise(v);
    }
    return out;
  }
  if (typeof value === 'string' && /^-?[0-9]+$/.test(value) && value.length < 16) return Number(value);
  return value;
}

/** A gRPC answer with every implicit field written out, normalised (for comparing with HTTP JSON). */
export function grpcFull(schema: DescMessage, message: Json): Json {
  return normalise(toJson(schema, fromJson(schema, message as JsonValue), { alwaysEmitImplicit: true }));
}

export const grpcCodeName = (code: grpc.status): string => grpc.status[code];

/** The API's error object: code and message, and `field` when the error names one. */
export function errorShape(code: string): unknown {
  return expect.toSatisfy(
    (e: Record<string, unknown>) =>
      e.code === code &&
      typeof e.message === 'string' &&
      (e.field === undefined || typeof e.field === 'string') &&
      Object.keys(e).every((k) => k === 'code' || k === 'message' || k === 'field'),
    `an error { code: ${code}, message, field? }`,
  );
}
