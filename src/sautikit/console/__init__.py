"""The web console at ``/console`` (issue 18): pages for workspace members and the operator.

Templates and static assets (htmx, vendored from npm ``htmx.org``, and the stylesheet)
ship inside the package, so the console works with no internet.
"""
