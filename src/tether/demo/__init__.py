"""``tether demo``: a demo host with scripted agents, on a fresh machine, with no configuration."""
