"""The web dashboard: server-rendered pages (Jinja2), live through server-sent events, usable on a phone.

``views`` builds what the pages and ``tether top`` show from the store; ``sessions`` signs people in
(approver or admin token → session cookie, CSRF tokens, a login rate limit); ``pages`` serves the HTML,
``api`` the JSON endpoints the CLI's verbs need beyond ``tether.api.app``; ``bind`` decides which
addresses the daemon may listen on.
"""
