"""The web dashboard (`veille web`, or inside `veille run` with `[web] enabled = true`): server-rendered
pages over the database (overview, clients, incidents, sources), the phone's actions on incidents, a
login per user, and `/healthz` + `/metrics` for operators. No JavaScript: charts are inline SVG."""
