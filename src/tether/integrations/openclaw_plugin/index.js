// tether's plugin for OpenClaw, shipped inside tether's Python package (tether/integrations/openclaw_plugin).
// `tether integrate openclaw` puts this folder in an OpenClaw config; the `openclaw` agent kind puts it in the
// config of every gateway tether runs.
//
// before_tool_call: every tool call (exec and all the others) is asked of tether's daemon
// (POST /v1/hooks/openclaw[/AGENT], an agent token) before it runs. Only an explicit "allow" lets it run; a
// block, a held call still undecided after `wait` seconds, and every failure (no token, the daemon down,
// refusing, slow, an answer that is not JSON) block it, with the reason handed to the model. OpenClaw itself
// blocks a call whose handler throws or outlives plugins.entries.tether.hooks.timeouts.before_tool_call.
//
// after_tool_call, before_agent_run/agent_end (a turn: a session and a task), session_start, session_end and
// llm_output are reported for monitoring (commands run, files changed, turns as tasks, token usage and spend);
// they never block and never wait more than a few seconds.
// Only numbers, names and the tool's own parameters leave the gateway, never the conversation's text.
//
// The service "tether-approvals" mirrors the gateway's own exec approvals (tools.exec ask=always/on-miss)
// into tether's: it connects to this gateway's WebSocket as an operator client (the gateway's own token,
// a device key kept in the state folder), receives exec.approval.requested, asks tether's daemon
// (event exec_approval: a tether approval a human decides with `tether approve/deny`, the dashboard or a
// notification) and answers exec.approval.resolve with allow-once or deny. Fails closed: the command waits
// while tether is unreachable (a daemon restart), and is denied after 60 s of that.

import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

const PATH = "/v1/hooks/openclaw";
const MAX_WAIT = 280; // seconds; Node's fetch gives up on headers after 300
const REPORT_TIMEOUT_MS = 5000;

function settings(api) {
  const c = api.pluginConfig ?? {};
  const num = (v, d) => (typeof v === "number" && Number.isFinite(v) ? v : d);
  return {
    url: typeof c.url === "string" ? c.url.replace(/\/+$/, "") : "",
    agent: typeof c.agent === "string" ? c.agent : "",
    tokenEnv: typeof c.tokenEnv === "string" && c.tokenEnv ? c.tokenEnv : "TETHER_TOKEN",
    tokenFile: typeof c.tokenFile === "string" ? c.tokenFile : "",
    wait: Math.min(Math.max(num(c.wait, 120), 0), MAX_WAIT),
    timeoutMs: Math.min(Math.max(num(c.timeoutMs, 5000), 100), 60000),
    approvals: c.approvals !== false,
  };
}

function token(s) {
  const fromEnv = (process.env[s.tokenEnv] ?? "").trim();
  if (fromEnv) return fromEnv;
  if (s.tokenFile) {
    try {
      return readFileSync(s.tokenFile, "utf8").trim();
    } catch {
      return "";
    }
  }
  return "";
}

function workspace(api, ctx) {
  const agents = api.config?.agents ?? {};
  let dir = (ctx?.agentId && agents.entries?.[ctx.agentId]?.workspace) || agents.defaults?.workspace || process.cwd();
  if (typeof dir !== "string") return process.cwd();
  if (dir === "~" || dir.startsWith("~/")) dir = join(homedir(), dir.slice(1));
  return dir;
}

function why(err) {
  if (err?.name === "TimeoutError") return "the daemon did not answer in time";
  const cause = err?.cause?.code || err?.cause?.message;
  return String(err?.message ?? err).slice(0, 200) + (cause ? ` (${String(cause).slice(0, 80)})` : "");
}

async function post(s, body, waitSeconds, timeoutMs, outer) {
  if (!s.url) throw new Error("the plugin has no url: run `tether integrate openclaw` again");
  const tok = token(s);
  if (!tok) {
    throw new Error(`no agent token: ${s.tokenEnv} is empty${s.tokenFile ? ` and ${s.tokenFile} cannot be read` : ""}`);
  }
  const limit = AbortSignal.timeout(timeoutMs + waitSeconds * 1000);
  const signal = outer ? AbortSignal.any([limit, outer]) : limit;
  const res = await fetch(s.url + PATH + (s.agent ? "/" + encodeURIComponent(s.agent) : ""), {
    method: "POST",
    signal,
    headers: {
      authorization: `Bearer ${tok}`,
      "content-type": "application/json",
      "x-tether-wait": String(waitSeconds),
    },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`the daemon answered HTTP ${res.status}: ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

function report(s, body) {
  post(s, body, 0, REPORT_TIMEOUT_MS).catch(() => {}); // monitoring never blocks the gateway
}

// -- the operator client: OpenClaw's exec approvals as tether approvals ------------------------------------

// operator.admin: in 2026.9.6 an agent run's exec approval found no approval route with operator.approvals
// alone (nor with operator.read and operator.write added: the turn was denied as headless); with operator.admin
// it waits for this client. The client holds the gateway's own shared token, which grants admin anyway.
const SCOPES = ["operator.admin", "operator.approvals"];
const UNREACHABLE_MS = 60000; // tether unreachable this long while asking about an exec approval: deny it
const CLIENT = { id: "gateway-client", mode: "backend" };

function stateDir() {
  const dir = process.env.OPENCLAW_STATE_DIR;
  return dir && dir.trim() ? dir : join(homedir(), ".openclaw");
}

function deviceKey() {
  const dir = stateDir();
  const file = join(dir, "tether-operator-key.pem");
  let key;
  try {
    key = createPrivateKey(readFileSync(file, "utf8"));
  } catch {
    key = generateKeyPairSync("ed25519").privateKey;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(file, key.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  }
  const raw = createPublicKey(key).export({ type: "spki", format: "der" }).subarray(-32);
  return { key, raw, id: createHash("sha256").update(raw).digest("hex") };
}

function gatewayAuth(cfg) {
  const gw = cfg?.gateway ?? {};
  const auth = gw.auth ?? {};
  const str = (v) => (typeof v === "string" && v.trim() ? v.trim() : "");
  return {
    port: Number(gw.port) || Number(process.env.OPENCLAW_GATEWAY_PORT) || 18789,
    tls: Boolean(gw.tls?.enabled),
    token: str(auth.token) || str(process.env.OPENCLAW_GATEWAY_TOKEN),
    password: str(auth.password) || str(process.env.OPENCLAW_GATEWAY_PASSWORD),
  };
}

function approvalMirror(api, s) {
  const log = api.logger ?? console;
  let ws = null;
  let stopped = false;
  let timer = null;
  let backoff = 250;
  let seq = 0;
  let refused = ""; // the last refusal logged
  const calls = new Map(); // request id -> resolve(response frame or null)
  const active = new Map(); // OpenClaw approval id -> AbortController while tether is asked
  const answered = new Set(); // approval ids tether resolved itself

  const call = (method, params) =>
    new Promise((resolve) => {
      if (!ws || ws.readyState !== 1) return resolve(null);
      const id = `tether-${++seq}`;
      calls.set(id, resolve);
      ws.send(JSON.stringify({ type: "req", id, method, params }));
    });

  function connect() {
    timer = null;
    if (stopped) return;
    const g = gatewayAuth(api.config);
    if (g.tls) {
      log.warn?.("tether: the gateway uses TLS; its exec approvals are not mirrored into tether");
      return;
    }
    const socket = new WebSocket(`ws://127.0.0.1:${g.port}`);
    ws = socket;
    socket.onmessage = (m) => {
      let f;
      try {
        f = JSON.parse(typeof m.data === "string" ? m.data : String(m.data));
      } catch {
        return;
      }
      onFrame(f, g).catch((err) => log.warn?.(`tether: approvals mirror: ${why(err)}`));
    };
    socket.onerror = () => {};
    socket.onclose = () => {
      if (ws === socket) ws = null;
      for (const resolve of calls.values()) resolve(null);
      calls.clear();
      if (!stopped) timer = setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 10000);
    };
  }

  function hello(challenge, g) {
    const me = deviceKey();
    const platform = process.platform.toLowerCase();
    const signedAt = challenge.ts;
    const payload = ["v3", me.id, CLIENT.id, CLIENT.mode, "operator", SCOPES.join(","), String(signedAt),
      g.token, challenge.nonce, platform, ""].join("|");
    const auth = {};
    if (g.token) auth.token = g.token;
    if (g.password) auth.password = g.password;
    return call("connect", {
      minProtocol: 4,
      maxProtocol: 4,
      client: { ...CLIENT, displayName: "tether", version: "1", platform },
      role: "operator",
      scopes: SCOPES,
      caps: ["exec-approvals"],
      auth,
      device: {
        id: me.id,
        publicKey: me.raw.toString("base64url"),
        signature: sign(null, Buffer.from(payload, "utf8"), me.key).toString("base64url"),
        signedAt,
        nonce: challenge.nonce,
      },
    });
  }

  async function onFrame(f, g) {
    if (f?.type === "res") {
      const resolve = calls.get(f.id);
      calls.delete(f.id);
      resolve?.(f);
      return;
    }
    if (f?.type !== "event") return;
    if (f.event === "connect.challenge") {
      const res = await hello(f.payload ?? {}, g);
      if (!res?.ok) { // e.g. UNAVAILABLE while the gateway starts (retryable): connect again after the backoff
        const said = `tether: the gateway refused tether's operator client: ${JSON.stringify(res?.error ?? null).slice(0, 300)}`;
        if (res && !res.error?.retryable && said !== refused) log.warn?.(said); // once, not at every retry
        refused = said;
        ws?.close();
        return;
      }
      backoff = 250;
      refused = "";
      const list = await call("exec.approval.list", {}); // asked while tether was not connected
      for (const a of Array.isArray(list?.payload) ? list.payload : []) asking(a);
    } else if (f.event === "exec.approval.requested") {
      asking(f.payload ?? {});
    } else if (f.event === "exec.approval.resolved") {
      const id = f.payload?.id;
      if (typeof id !== "string" || answered.delete(id)) return;
      active.get(id)?.abort();
      report(s, { hook_event_name: "exec_approval_resolved", approval_id: id, decision: f.payload?.decision ?? null });
    }
  }

  // never an unhandled rejection: Node ends the process (the gateway) on one
  const asking = (a) => ask(a).catch((err) => log.warn?.(`tether: exec approval ${String(a?.id)}: ${why(err)}`));

  async function ask(a) {
    if (typeof a?.id !== "string" || active.has(a.id)) return;
    const ctrl = new AbortController();
    active.set(a.id, ctrl);
    const r = a.request ?? {};
    const expires = Number(a.expiresAtMs) || Date.now() + 1800000;
    let decision = null;
    let failingSince = 0; // tether unreachable since (a daemon restart takes seconds: ask again meanwhile)
    try {
      while (!ctrl.signal.aborted && !stopped && Date.now() < expires) {
        const wait = Math.max(0, Math.min(MAX_WAIT, Math.floor((expires - Date.now()) / 1000)));
        let got;
        try {
          got = await post(s, {
            hook_event_name: "exec_approval",
            approval_id: a.id,
            command: typeof r.command === "string" ? r.command : "",
            cwd: typeof r.cwd === "string" ? r.cwd : null,
            host: r.host ?? null,
            resolved_path: r.resolvedPath ?? null,
            session_id: r.sessionKey ?? r.sessionId ?? null,
            openclaw_agent: r.agentId ?? null,
            tool_use_id: r.toolCallId ?? null,
            run_id: r.runId ?? null,
            expires_at_ms: expires,
          }, wait, s.timeoutMs, ctrl.signal);
        } catch (err) {
          if (ctrl.signal.aborted) return;
          failingSince ||= Date.now();
          if (Date.now() - failingSince >= UNREACHABLE_MS) {
            log.warn?.(`tether: could not ask tether about exec approval ${a.id} for 60 s (${why(err)}); denied`);
            decision = "deny";
            break;
          }
          await new Promise((resolve) => setTimeout(resolve, 1000)); // the command waits meanwhile: closed
          continue;
        }
        failingSince = 0;
        if (got?.decision === "allow-once" || got?.decision === "deny") {
          decision = got.decision;
          break;
        }
        if (got?.decision !== "pending") {
          decision = "deny";
          break;
        }
      }
      if (decision && !ctrl.signal.aborted) {
        answered.add(a.id);
        const res = await call("exec.approval.resolve", { id: a.id, decision });
        if (!res?.ok) {
          answered.delete(a.id);
          log.warn?.(`tether: exec.approval.resolve ${a.id}: ${JSON.stringify(res?.error ?? "not connected").slice(0, 200)}`);
        }
      }
    } finally {
      active.delete(a.id);
    }
  }

  return {
    start() {
      stopped = false;
      backoff = 250;
      connect();
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      for (const ctrl of active.values()) ctrl.abort();
      active.clear();
      ws?.close();
      ws = null;
    },
  };
}

const plugin = {
  id: "tether",
  name: "tether",
  description: "Asks tether's daemon about every tool call before it runs; fails closed.",
  register(api) {
    const s = settings(api);
    const base = (ctx) => ({
      session_id: ctx?.sessionKey ?? ctx?.sessionId ?? null,
      openclaw_agent: ctx?.agentId ?? null,
      cwd: workspace(api, ctx),
    });

    api.on(
      "before_tool_call",
      async (event, ctx) => {
        let got;
        try {
          got = await post(s, {
            hook_event_name: "before_tool_call",
            tool_name: event.toolName,
            tool_input: event.params ?? {},
            tool_kind: event.toolKind ?? null,
            tool_use_id: event.toolCallId ?? ctx?.toolCallId ?? null,
            run_id: event.runId ?? ctx?.runId ?? null,
            ...base(ctx),
          }, s.wait, s.timeoutMs, ctx?.abortSignal);
        } catch (err) {
          return { block: true, blockReason: `tether could not decide (${why(err)}); blocked. Do not retry it.` };
        }
        if (got && got.decision === "allow") return undefined;
        const reason = typeof got?.reason === "string" && got.reason ? got.reason : "tether blocked it";
        return { block: true, blockReason: reason };
      },
      { priority: 1000 },
    );

    api.on("after_tool_call", (event, ctx) => {
      const details = event.result?.details ?? {};
      report(s, {
        hook_event_name: "after_tool_call",
        tool_name: event.toolName,
        tool_input: event.params ?? {},
        tool_use_id: event.toolCallId ?? ctx?.toolCallId ?? null,
        exit_code: typeof details.exitCode === "number" ? details.exitCode : null,
        error: typeof event.error === "string" ? event.error.slice(0, 1000) : null,
        ...base(ctx),
      });
    });

    // A turn (one agent run) is a session and a task in tether: OpenClaw emits no session_start/session_end
    // for turns through its OpenAI-compatible endpoint (2026.9.6). before_agent_run must not throw: a throwing
    // handler blocks the turn; report() never does, and returns nothing (no verdict on the turn).
    const turn = (ctx) => {
      const key = ctx?.sessionKey ?? ctx?.sessionId ?? null;
      return key && ctx?.runId ? `${key}/${ctx.runId}` : key;
    };
    api.on("before_agent_run", (event, ctx) => {
      report(s, { hook_event_name: "turn_start", ...base(ctx), session_id: turn(ctx), trigger: ctx?.trigger ?? null });
    });
    api.on("agent_end", (event, ctx) => {
      report(s, {
        hook_event_name: "turn_end",
        ...base(ctx),
        session_id: turn(ctx),
        reason: event?.success === false ? String(event?.error ?? "failed").slice(0, 300) : "done",
      });
    });

    api.on("session_start", (event, ctx) => {
      report(s, { hook_event_name: "session_start", ...base(ctx), session_id: event.sessionKey ?? event.sessionId });
    });

    api.on("session_end", (event, ctx) => {
      report(s, {
        hook_event_name: "session_end",
        ...base(ctx),
        session_id: event.sessionKey ?? event.sessionId,
        reason: event.reason ?? null,
      });
    });

    if (s.approvals && typeof api.registerService === "function") {
      const mirror = approvalMirror(api, s);
      api.registerService({ id: "tether-approvals", start: () => mirror.start(), stop: () => mirror.stop() });
    }

    api.on("llm_output", (event, ctx) => {
      const u = event.usage ?? {};
      report(s, {
        hook_event_name: "llm_output",
        ...base(ctx),
        model: event.model ?? null,
        provider: event.provider ?? null,
        usage: {
          input: u.input ?? 0,
          output: u.output ?? 0,
          cacheRead: u.cacheRead ?? 0,
          cacheWrite: u.cacheWrite ?? 0,
          cost: typeof u.cost?.total === "number" ? u.cost.total : null, // USD, from the model's configured prices
        },
      });
    });
  },
};

export default plugin;
