// The OpenClaw plugin's before_tool_call handler timed outside a gateway: tether's real plugin
// (src/tether/integrations/openclaw_plugin/index.js) registered on a stand-in `api`, called as a gateway calls
// it, one tool call at a time, alternating with a no-op plugin's handler. Prints JSON {tether: [ms], noop: [ms]}.
//   node openclaw_harness.mjs PLUGIN_INDEX URL AGENT N CWD   (the agent token in $TETHER_TOKEN)
const [index, url, agent, n, cwd] = process.argv.slice(2);
const plugin = (await import(index)).default;
const handlers = {};
plugin.register({
  pluginConfig: { url, agent, wait: 0 },
  config: { agents: { defaults: { workspace: cwd } } },
  on(name, fn) { handlers[name] = fn; },
});
const noop = { handlers: {} };
({ register(api) { api.on("before_tool_call", async () => undefined); } }).register({
  on(name, fn) { noop.handlers[name] = fn; },
});
const event = { toolName: "exec", params: { command: "ls -la src" }, toolCallId: "call_bench", runId: "run" };
const ctx = { agentId: "main", sessionKey: "agent:main:bench", toolName: "exec" };
const out = { tether: [], noop: [] };
for (let i = 0; i < 20; i++) await handlers.before_tool_call(event, ctx); // warm the connection
for (let i = 0; i < Number(n); i++) {
  for (const [key, fn] of i % 2 ? [["noop", noop.handlers.before_tool_call], ["tether", handlers.before_tool_call]]
                                : [["tether", handlers.before_tool_call], ["noop", noop.handlers.before_tool_call]]) {
    const t0 = process.hrtime.bigint();
    const got = await fn(event, ctx);
    out[key].push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (key === "tether" && got !== undefined) throw new Error(`tether did not allow it: ${JSON.stringify(got)}`);
  }
}
console.log(JSON.stringify(out));
