"""The web dashboard at ``/_marketmeter/ui/``: server-rendered pages (Jinja2 templates, a
stylesheet and a small script, all package data) over the operator service layer
(docs/dashboard.md)."""
