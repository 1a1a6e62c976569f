"""Stand-ins for the model APIs the real agent CLIs call (Anthropic Messages, OpenAI Responses), served on
127.0.0.1 from a thread of the test process: scripted tool calls, recorded requests."""
