// An independent ActivityPub test peer built on Fedify (https://fedify.dev).
//
// It serves ONE Person actor (default username "peer") on http://HOST:PORT,
// with WebFinger, actor, inbox (personal + shared), outbox, followers and
// following collections.  Incoming activities go through Fedify's normal
// verification (HTTP Signatures draft-cavage or RFC 9421, Linked Data
// Signatures, Object Integrity Proofs); only verified activities reach the
// inbox listeners, which record them.
//
// A small control API (not part of ActivityPub) lives under /_control/:
//   GET  /_control/health            -> {"ok": true, actor, handle}
//   GET  /_control/received          -> verified activities seen by listeners
//   GET  /_control/inbox_log         -> every POST to an inbox (incl. rejected)
//   GET  /_control/sent              -> activities this peer sent
//   GET  /_control/errors            -> outbox delivery / inbox errors
//   GET  /_control/state             -> followers / following
//   POST /_control/follow    {"target": "user@host" | actor URL}
//   POST /_control/unfollow  {"target": ...}
//   POST /_control/reply     {"inReplyTo": url, "to": actor, "content": "..."}
//   POST /_control/post      {"content": "...", "to"?: [actor...], "public"?: bool}
//   POST /_control/send      {"to": actor, "activity": {...raw AS2 JSON...}}
//   POST /_control/config    {"followPolicy": "accept"|"reject"|"ignore"}
//   POST /_control/reset     -> clears received / inbox_log / sent / errors
//
// Usage: node server.mjs --host 127.0.0.5 --port 8105 [--username peer]
//          [--first-knock rfc9421|draft-cavage-http-signatures-12]
//          [--follow-policy accept|reject|ignore] [--log-level debug|info|...]
//          [--ed25519]
// Every option also has an env var: FEDIFY_PEER_HOST, FEDIFY_PEER_PORT, ...
import { AsyncLocalStorage } from "node:async_hooks";
import http from "node:http";
import { parseArgs } from "node:util";
import {
  createExponentialBackoffPolicy,
  createFederation,
  InProcessMessageQueue,
  MemoryKvStore,
} from "@fedify/fedify";
import {
  Accept,
  Activity,
  Announce,
  Create,
  Delete,
  Endpoints,
  Follow,
  isActor,
  Mention,
  Note,
  Person,
  PUBLIC_COLLECTION,
  Reject,
  Undo,
  Update,
} from "@fedify/vocab";
import { configure, getConsoleSink, getLogger } from "@logtape/logtape";
import { Temporal } from "@js-temporal/polyfill";

const { values: args } = parseArgs({
  options: {
    host: { type: "string", default: process.env.FEDIFY_PEER_HOST ?? "127.0.0.5" },
    port: { type: "string", default: process.env.FEDIFY_PEER_PORT ?? "8105" },
    username: { type: "string", default: process.env.FEDIFY_PEER_USERNAME ?? "peer" },
    "first-knock": {
      type: "string",
      default: process.env.FEDIFY_PEER_FIRST_KNOCK ?? "rfc9421",
    },
    "follow-policy": {
      type: "string",
      default: process.env.FEDIFY_PEER_FOLLOW_POLICY ?? "accept",
    },
    "log-level": { type: "string", default: process.env.FEDIFY_PEER_LOG_LEVEL ?? "info" },
    // Also publish an Ed25519 key (assertionMethod Multikey): Fedify then adds
    // FEP-8b32 Object Integrity Proofs ("proof") to every outgoing activity.
    ed25519: { type: "boolean", default: process.env.FEDIFY_PEER_ED25519 === "1" },
  },
});

const HOST = args.host;
const PORT = Number.parseInt(args.port, 10);
const USERNAME = args.username;
const BASE = `http://${HOST}:${PORT}`;
const HANDLE = `${USERNAME}@${HOST}:${PORT}`;
const state = { followPolicy: args["follow-policy"] };
if (!["rfc9421", "draft-cavage-http-signatures-12"].includes(args["first-knock"])) {
  throw new Error(`bad --first-knock: ${args["first-knock"]}`);
}

await configure({
  contextLocalStorage: new AsyncLocalStorage(),
  sinks: { console: getConsoleSink() },
  loggers: [
    // Signature-verification failures are only explained at debug level.
    { category: ["fedify", "sig"], sinks: ["console"], lowestLevel: "debug" },
    { category: ["fedify"], sinks: ["console"], lowestLevel: args["log-level"] },
    { category: ["peer"], sinks: ["console"], lowestLevel: "debug" },
    { category: ["logtape", "meta"], sinks: ["console"], lowestLevel: "warning" },
  ],
});
const log = getLogger(["peer"]);

// ---------------------------------------------------------------- state
const received = []; // verified activities (inbox listeners)
const inboxLog = []; // every POST to an inbox, with Fedify's status code
const sent = []; // activities sent by this peer
const errors = []; // delivery / processing errors
const followers = new Map(); // actor id -> {id, inbox, sharedInbox}
const following = new Map(); // actor id -> {id, inbox, followId, state}
const notes = new Map(); // note uuid -> Note
const sentById = new Map(); // activity id -> JSON-LD (served at /activities/…)
const rawById = new Map(); // activity id -> raw JSON as received

// RSASSA-PKCS1-v1_5 / SHA-256 (Mastodon's rsa-sha256).  2048 bits keeps
// start-up fast; Fedify accepts any size.
const rsaKeyPair = await crypto.subtle.generateKey(
  {
    name: "RSASSA-PKCS1-v1_5",
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: "SHA-256",
  },
  true,
  ["sign", "verify"],
);

const keyPairs = [rsaKeyPair];
if (args.ed25519) {
  keyPairs.push(await crypto.subtle.generateKey("Ed25519", true, ["sign", "verify"]));
}

// ---------------------------------------------------------------- federation
const federation = createFederation({
  kv: new MemoryKvStore(),
  queue: new InProcessMessageQueue(),
  origin: BASE,
  allowPrivateAddress: true, // talk to 127.0.0.x
  firstKnock: args["first-knock"],
  circuitBreaker: false,
  outboxRetryPolicy: createExponentialBackoffPolicy({
    initialDelay: { seconds: 1 },
    maxDelay: { seconds: 5 },
    maxAttempts: 4,
  }),
  inboxRetryPolicy: createExponentialBackoffPolicy({
    initialDelay: { seconds: 1 },
    maxDelay: { seconds: 5 },
    maxAttempts: 3,
  }),
  onOutboxError: (error, activity) => {
    log.warn("outbox error for {id}: {error}", { id: activity?.id?.href, error });
    errors.push({
      kind: "outbox",
      activityId: activity?.id?.href ?? null,
      error: String(error),
      at: new Date().toISOString(),
    });
  },
});

federation
  .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
    if (identifier !== USERNAME) return null;
    const keys = await ctx.getActorKeyPairs(identifier);
    return new Person({
      id: ctx.getActorUri(identifier),
      preferredUsername: identifier,
      name: `Fedify test peer ${HOST}:${PORT}`,
      summary: "Independent ActivityPub peer (Fedify) for interop tests.",
      url: ctx.getActorUri(identifier),
      inbox: ctx.getInboxUri(identifier),
      outbox: ctx.getOutboxUri(identifier),
      followers: ctx.getFollowersUri(identifier),
      following: ctx.getFollowingUri(identifier),
      endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
      manuallyApprovesFollowers: state.followPolicy !== "accept",
      publicKey: keys[0].cryptographicKey,
      assertionMethods: keys.map((k) => k.multikey),
    });
  })
  .setKeyPairsDispatcher(async (_ctx, identifier) => {
    if (identifier !== USERNAME) return [];
    return keyPairs;
  })
  .mapHandle((_ctx, username) => (username === USERNAME ? USERNAME : null));

federation.setOutboxDispatcher("/users/{identifier}/outbox", async (_ctx, identifier) => {
  if (identifier !== USERNAME) return null;
  const items = [];
  for (const entry of sent) {
    if (entry.type === "Create" && entry.public) items.push(entry.activity);
  }
  return { items: items.reverse() };
});

federation
  .setFollowersDispatcher("/users/{identifier}/followers", async (_ctx, identifier) => {
    if (identifier !== USERNAME) return null;
    return {
      items: [...followers.values()].map((f) => ({
        id: new URL(f.id),
        inboxId: new URL(f.inbox),
        endpoints: f.sharedInbox ? { sharedInbox: new URL(f.sharedInbox) } : null,
      })),
    };
  })
  .setCounter((_ctx, identifier) => (identifier === USERNAME ? followers.size : null));

federation
  .setFollowingDispatcher("/users/{identifier}/following", async (_ctx, identifier) => {
    if (identifier !== USERNAME) return null;
    return {
      items: [...following.values()]
        .filter((f) => f.state === "accepted")
        .map((f) => new URL(f.id)),
    };
  })
  .setCounter((_ctx, identifier) =>
    identifier === USERNAME
      ? [...following.values()].filter((f) => f.state === "accepted").length
      : null,
  );

federation.setObjectDispatcher(Note, "/notes/{id}", (_ctx, values) => notes.get(values.id) ?? null);

// ---------------------------------------------------------------- inbox
function objectInfo(raw) {
  const obj = raw?.object;
  if (obj == null) return { id: null, type: null };
  if (typeof obj === "string") return { id: obj, type: null };
  if (Array.isArray(obj)) return objectInfo({ object: obj[0] });
  return { id: obj.id ?? obj["@id"] ?? null, type: obj.type ?? obj["@type"] ?? null };
}

async function record(ctx, activity) {
  const id = activity.id?.href ?? null;
  const raw = (id && rawById.get(id)) ?? (await activity.toJsonLd({ contextLoader: ctx.contextLoader }));
  const info = objectInfo(raw);
  const entry = {
    type: raw?.type ?? activity.constructor.name,
    id,
    actor: activity.actorId?.href ?? null,
    object: activity.objectId?.href ?? info.id,
    objectType: info.type,
    recipient: ctx.recipient,
    verified: true, // listeners only run for verified activities
    receivedAt: new Date().toISOString(),
    raw,
  };
  received.push(entry);
  log.info("received {type} {id} from {actor}", entry);
  return entry;
}

function recipientFromActor(actor) {
  return {
    id: actor.id.href,
    inbox: actor.inboxId?.href ?? null,
    sharedInbox: actor.endpoints?.sharedInbox?.href ?? null,
  };
}

federation
  .setInboxListeners("/users/{identifier}/inbox", "/inbox")
  .on(Follow, async (ctx, follow) => {
    await record(ctx, follow);
    const parsed = ctx.parseUri(follow.objectId);
    if (parsed?.type !== "actor" || parsed.identifier !== USERNAME) {
      log.warn("Follow {id} is not for our actor; ignoring", { id: follow.id?.href });
      return;
    }
    if (state.followPolicy === "ignore") return;
    const follower = await follow.getActor(ctx);
    if (follower == null || !isActor(follower)) {
      errors.push({ kind: "inbox", error: `could not fetch follower ${follow.actorId?.href}` });
      return;
    }
    const Response = state.followPolicy === "reject" ? Reject : Accept;
    const reply = new Response({
      id: new URL(`${BASE}/activities/${crypto.randomUUID()}`),
      actor: ctx.getActorUri(USERNAME),
      to: follower.id,
      object: follow,
    });
    if (state.followPolicy === "accept") followers.set(follower.id.href, recipientFromActor(follower));
    await send(ctx, follower, reply, { immediate: false });
  })
  .on(Accept, async (ctx, accept) => {
    await record(ctx, accept);
    markFollowing(accept, "accepted");
  })
  .on(Reject, async (ctx, reject) => {
    await record(ctx, reject);
    markFollowing(reject, "rejected");
  })
  .on(Undo, async (ctx, undo) => {
    await record(ctx, undo);
    const raw = rawById.get(undo.id?.href) ?? {};
    const inner = raw.object;
    const innerType = typeof inner === "object" && inner != null ? inner.type : null;
    if (innerType === "Follow" && undo.actorId) followers.delete(undo.actorId.href);
  })
  .on(Create, record)
  .on(Update, record)
  .on(Delete, async (ctx, del) => {
    await record(ctx, del);
  })
  .on(Announce, record)
  .on(Activity, record) // Like, EmojiReact, Move, ... anything else
  .onError((_ctx, error) => {
    log.error("inbox listener error: {error}", { error });
    errors.push({ kind: "inbox", error: String(error), at: new Date().toISOString() });
  });

function markFollowing(activity, newState) {
  const raw = rawById.get(activity.id?.href) ?? {};
  const info = objectInfo(raw);
  for (const f of following.values()) {
    if (
      (info.id != null && f.followId === info.id) ||
      (activity.actorId != null && f.id === activity.actorId.href && f.state === "pending")
    ) {
      f.state = newState;
    }
  }
}

// ---------------------------------------------------------------- sending
async function send(ctx, recipient, activity, { immediate = true } = {}) {
  const json = await activity.toJsonLd({ contextLoader: ctx.contextLoader });
  sentById.set(activity.id.href, json);
  const entry = {
    type: json.type,
    id: activity.id.href,
    to: recipient === "followers" ? "followers" : [recipient].flat().map((r) => r.id?.href),
    public: JSON.stringify(json).includes(PUBLIC_COLLECTION.href) ||
      JSON.stringify(json).includes("as:Public"),
    activity,
    sentAt: new Date().toISOString(),
  };
  sent.push(entry);
  // `immediate` makes delivery errors surface in the control response
  // (no retry); otherwise Fedify's queue retries and onOutboxError records.
  await ctx.sendActivity({ identifier: USERNAME }, recipient, activity, {
    immediate,
    preferSharedInbox: false,
  });
  return json;
}

async function resolveActor(ctx, target) {
  if (typeof target !== "string" || target === "") throw new HttpError(400, "target required");
  let url = null;
  if (/^https?:\/\//.test(target)) {
    url = target;
  } else {
    // user@host[:port] -- Fedify's own acct: lookup always uses https://, so
    // do the WebFinger request over plain http ourselves (loopback tests).
    const handle = target.replace(/^@/, "").replace(/^acct:/, "");
    const at = handle.lastIndexOf("@");
    if (at <= 0) throw new HttpError(400, `bad handle ${target}`);
    const host = handle.slice(at + 1);
    const wf = new URL(`http://${host}/.well-known/webfinger`);
    wf.searchParams.set("resource", `acct:${handle}`);
    const res = await fetch(wf, { headers: { Accept: "application/jrd+json" } });
    if (!res.ok) throw new HttpError(502, `WebFinger ${wf} -> HTTP ${res.status}`);
    const jrd = await res.json();
    const link = (jrd.links ?? []).find(
      (l) =>
        l.rel === "self" &&
        l.href &&
        (l.type === "application/activity+json" ||
          /application\/ld\+json;\s*profile="https:\/\/www.w3.org\/ns\/activitystreams"/.test(l.type ?? "")),
    );
    if (!link) throw new HttpError(502, `WebFinger ${wf}: no rel=self AP link`);
    url = link.href;
  }
  // Signed GET (as the peer actor), so servers in authorized-fetch / secure mode answer too.
  const documentLoader = await ctx.getDocumentLoader({ identifier: USERNAME });
  const actor = await ctx.lookupObject(url, { documentLoader });
  if (actor == null || !isActor(actor)) throw new HttpError(502, `could not look up actor ${url}`);
  return actor;
}

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// ---------------------------------------------------------------- control
function json(data, status = 200) {
  return new Response(JSON.stringify(data, null, 2), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}

function serializeSent(entry) {
  return { ...entry, activity: sentById.get(entry.id) ?? null };
}

async function control(request, url) {
  const ctx = federation.createContext(request, undefined);
  const path = url.pathname.replace(/^\/_control/, "");
  const body = request.method === "POST" ? await request.json().catch(() => ({})) : {};
  if (request.method === "GET") {
    switch (path) {
      case "/health":
        return json({ ok: true, actor: ctx.getActorUri(USERNAME).href, handle: HANDLE });
      case "/received":
        return json(received);
      case "/inbox_log":
        return json(inboxLog);
      case "/sent":
        return json(sent.map(serializeSent));
      case "/errors":
        return json(errors);
      case "/state":
        return json({
          followPolicy: state.followPolicy,
          followers: [...followers.values()],
          following: [...following.values()],
        });
    }
    return json({ error: "not found" }, 404);
  }
  if (request.method !== "POST") return json({ error: "method not allowed" }, 405);
  const me = ctx.getActorUri(USERNAME);
  switch (path) {
    case "/follow": {
      const actor = await resolveActor(ctx, body.target);
      const follow = new Follow({
        id: new URL(`${BASE}/activities/${crypto.randomUUID()}`),
        actor: me,
        object: actor.id,
        to: actor.id,
      });
      following.set(actor.id.href, {
        ...recipientFromActor(actor),
        followId: follow.id.href,
        state: "pending",
      });
      const activity = await send(ctx, actor, follow, { immediate: body.immediate ?? true });
      return json({ ok: true, actor: actor.id.href, activity });
    }
    case "/unfollow": {
      const actor = await resolveActor(ctx, body.target);
      const f = following.get(actor.id.href);
      const undo = new Undo({
        id: new URL(`${BASE}/activities/${crypto.randomUUID()}`),
        actor: me,
        to: actor.id,
        object: new Follow({
          id: f ? new URL(f.followId) : null,
          actor: me,
          object: actor.id,
        }),
      });
      following.delete(actor.id.href);
      const activity = await send(ctx, actor, undo, { immediate: body.immediate ?? true });
      return json({ ok: true, actor: actor.id.href, activity });
    }
    case "/reply":
    case "/post": {
      const recipients = [];
      const targets = path === "/reply" ? [body.to].filter(Boolean) : [body.to ?? []].flat();
      for (const t of targets) recipients.push(await resolveActor(ctx, t));
      const isPublic = body.public ?? true;
      const uuid = crypto.randomUUID();
      const noteId = ctx.getObjectUri(Note, { id: uuid });
      const note = new Note({
        id: noteId,
        attribution: me,
        content: body.content ?? "hello from the Fedify peer",
        replyTarget: body.inReplyTo ? new URL(body.inReplyTo) : null,
        published: Temporal.Now.instant(),
        tos: isPublic ? [PUBLIC_COLLECTION] : recipients.map((a) => a.id),
        ccs: isPublic
          ? [...recipients.map((a) => a.id), ctx.getFollowersUri(USERNAME)]
          : [],
        url: noteId,
        tags: recipients.map(
          (a) =>
            new Mention({
              href: a.id,
              name: `@${a.preferredUsername}@${a.id.host}`,
            }),
        ),
      });
      notes.set(uuid, note);
      const create = new Create({
        id: new URL(`${noteId.href}/activity`),
        actor: me,
        object: note,
        tos: note.toIds,
        ccs: note.ccIds,
        published: note.published,
      });
      const dest = recipients.length > 0 ? recipients : "followers";
      if (dest === "followers" && followers.size === 0) {
        return json({ ok: true, note: noteId.href, delivered: false });
      }
      const activity = await send(ctx, dest, create, { immediate: body.immediate ?? true });
      return json({ ok: true, note: noteId.href, activity });
    }
    case "/send": {
      const actor = await resolveActor(ctx, body.to);
      const raw = { "@context": "https://www.w3.org/ns/activitystreams", ...body.activity };
      raw.id ??= `${BASE}/activities/${crypto.randomUUID()}`;
      raw.actor ??= me.href;
      const activity = await Activity.fromJsonLd(raw, ctx);
      const out = await send(ctx, actor, activity, { immediate: body.immediate ?? true });
      return json({ ok: true, activity: out });
    }
    case "/config": {
      if (body.followPolicy) {
        if (!["accept", "reject", "ignore"].includes(body.followPolicy)) {
          return json({ error: "bad followPolicy" }, 400);
        }
        state.followPolicy = body.followPolicy;
      }
      return json({ ok: true, followPolicy: state.followPolicy });
    }
    case "/reset": {
      received.length = 0;
      inboxLog.length = 0;
      sent.length = 0;
      errors.length = 0;
      return json({ ok: true });
    }
  }
  return json({ error: "not found" }, 404);
}

// ---------------------------------------------------------------- http
const INBOX_PATHS = new Set(["/inbox", `/users/${USERNAME}/inbox`]);

async function handle(request) {
  const url = new URL(request.url);
  if (url.pathname.startsWith("/_control/")) {
    try {
      return await control(request, url);
    } catch (error) {
      log.error("control {path} failed: {error}", { path: url.pathname, error });
      return json({ error: String(error?.message ?? error) }, error?.status ?? 500);
    }
  }
  let logEntry = null;
  if (request.method === "POST" && INBOX_PATHS.has(url.pathname)) {
    const text = await request.clone().text();
    let body = null;
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
    if (typeof body?.id === "string") rawById.set(body.id, body);
    const h = request.headers;
    logEntry = {
      path: url.pathname,
      receivedAt: new Date().toISOString(),
      contentType: h.get("content-type"),
      signatureSpec: h.has("signature-input") ? "rfc9421" : h.has("signature") ? "draft-cavage" : null,
      headers: Object.fromEntries(h.entries()),
      type: body?.type ?? null,
      id: body?.id ?? null,
      body: body ?? text,
      status: null,
      response: null,
    };
  }
  if (request.method === "GET" && url.pathname.startsWith("/activities/")) {
    const stored = sentById.get(`${BASE}${url.pathname}`);
    if (stored) {
      return new Response(JSON.stringify(stored), {
        headers: { "Content-Type": "application/activity+json" },
      });
    }
  }
  const response = await federation.fetch(request, { contextData: undefined });
  if (logEntry) {
    logEntry.status = response.status;
    logEntry.response = await response.clone().text();
    inboxLog.push(logEntry);
    log.info("inbox POST {type} {id} -> {status}", logEntry);
  }
  return response;
}

const server = http.createServer(async (req, res) => {
  try {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const headers = new Headers();
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
    }
    const hasBody = req.method !== "GET" && req.method !== "HEAD";
    const request = new Request(`http://${req.headers.host ?? `${HOST}:${PORT}`}${req.url}`, {
      method: req.method,
      headers,
      body: hasBody ? Buffer.concat(chunks) : undefined,
    });
    const response = await handle(request);
    const out = Buffer.from(await response.arrayBuffer());
    const outHeaders = {};
    response.headers.forEach((v, k) => {
      outHeaders[k] = v;
    });
    res.writeHead(response.status, outHeaders);
    res.end(req.method === "HEAD" ? undefined : out);
  } catch (error) {
    log.error("request failed: {error}", { error });
    if (!res.headersSent) res.writeHead(500, { "Content-Type": "text/plain" });
    res.end(String(error));
  }
});

server.listen(PORT, HOST, () => {
  log.info("Fedify peer {handle} listening on {base}", { handle: HANDLE, base: BASE });
  console.log(`READY ${BASE} ${HANDLE}`);
});

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
