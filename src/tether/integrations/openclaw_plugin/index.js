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
// after_tool_call, session_start, session_end and llm_output are reported for monitoring (commands run,
// files changed, sessions as tasks, token usage); they never block and never wait more than a few seconds.
// Only numbers, names and the tool's own parameters leave the gateway, never the conversation's text.

import { readFileSync } from "node:fs";
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

    api.on("llm_output", (event, ctx) => {
      const u = event.usage ?? {};
      report(s, {
        hook_event_name: "llm_output",
        ...base(ctx),
        model: event.model ?? null,
        provider: event.provider ?? null,
        usage: { input: u.input ?? 0, output: u.output ?? 0, cacheRead: u.cacheRead ?? 0, cacheWrite: u.cacheWrite ?? 0 },
      });
    });
  },
};

export default plugin;
