"""motion-server serve: the dashboard folder over HTTP, and nothing else.

Real HTTP requests against a server bound to 127.0.0.1 on a free port. A
secret file sits beside the html folder; no URL may return a byte of it.

These run in this process on files only; the tests that serve over loopback
are in tests/integration/ops/test_serve.py.
"""

import re


from jobs.ops import serve


# --- what the Content-Security-Policy allows ---

def _csp_sources(directive):
    for part in serve.CSP.split(";"):
        name, *sources = part.split()
        if name == directive:
            return sources
    raise AssertionError(f"no {directive} in {serve.CSP}")


def test_the_csp_runs_the_pages_own_freshness_script_and_no_other_inline_script():
    import base64
    import hashlib

    import jinja2

    from jobs.dashboard import pages
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(pages.TEMPLATES), autoescape=True)
    rendered = env.get_template("_fresh.html").render()
    [script] = re.findall(r"<script>(.*?)</script>", rendered, re.S)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert _csp_sources("script-src") == ["'self'", f"'sha256-{digest}'"]   # no 'unsafe-inline'
    assert _csp_sources("default-src") == ["'self'"] and _csp_sources("frame-ancestors") == ["'none'"]
