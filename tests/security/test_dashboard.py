"""Issue 14, items 5 (dashboard part) and 19: a page of another origin never acts as the
dashboard's logged-in user, never logs a browser in, never frames the dashboard.

The attacker serves its pages from another port of 127.0.0.1 (:mod:`tests.security._site`),
the strongest place short of the dashboard's own origin: the same site, so the victim's
SameSite=Strict cookies go along, and the cookies it sets reach the dashboard too. The
victim is a platform admin logged in to the dashboard in a real Chromium.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests._support import http, ok
from tests.security._site import attacker_site, autopost, tossed
from tests.web.conftest import log_in

from micro.testing import MicroServerProcess

_EVIL = {"csrf": "tossed", "path": "evil", "value": "1"}
"""A config change with a CSRF token the attacker made up (and tossed as a cookie)."""


def _config(server: MicroServerProcess, path: str) -> str:
    return server.micro("config", "get", path).stdout.strip()


def _accounts(server: MicroServerProcess) -> str:
    return ok(server.micro("auth", "list", "accounts"))


def _csrf(page: Any, server: MicroServerProcess) -> str:
    """The session's CSRF token, from a form of the dashboard."""
    page.goto(f"{server.web}/config")
    value: str = page.locator("form input[name=csrf]").first.input_value()
    return value


def test_a_tossed_csrf_cookie_does_not_pass_a_form_from_another_port(
    micro_server: MicroServerProcess, page: Any
) -> None:
    web = micro_server.web
    log_in(page, micro_server)
    fields = {"csrf": "tossed", "id": "evil", "secret": "evil-secret-1", "scopes": "admin"}
    with attacker_site() as site:
        url = site.page(
            "/", autopost(f"{web}/accounts/create", fields), cookies=tossed("micro-csrf", "tossed")
        )
        with page.expect_response(f"{web}/accounts/create") as answer:
            page.goto(url)
        assert answer.value.status == 403
    assert "evil" not in _accounts(micro_server)


def test_a_fetch_from_another_port_with_a_tossed_cookie_is_refused(
    micro_server: MicroServerProcess, page: Any
) -> None:
    web = micro_server.web
    log_in(page, micro_server)
    script = (
        f"<script>fetch({json.dumps(web + '/config/set')}, {{method: 'POST', mode: 'no-cors',"
        f" credentials: 'include', body: new URLSearchParams({json.dumps(_EVIL)})}})</script>"
    )
    with attacker_site() as site:
        url = site.page("/", script, cookies=tossed("micro-csrf", "tossed"))
        with page.expect_request(f"{web}/config/set") as sent:
            page.goto(url)
        # the browser does not even hand the attacker's page the answer (CORP)
        answer = sent.value.response()
        assert answer is None or answer.status == 403
    assert _config(micro_server, "evil") != "1"


def test_the_csrf_token_is_the_sessions_not_a_cookies(
    micro_server: MicroServerProcess, page: Any
) -> None:
    """Without the browser's Origin and Sec-Fetch-Site (an old browser, a plugin): a
    token matching a cookie the attacker planted is still refused."""
    log_in(page, micro_server)
    page.context.add_cookies(
        [
            {"name": name, "value": "tossed", "domain": "127.0.0.1", "path": "/", "secure": secure}
            for name, secure in (("micro-csrf", False), ("__Host-micro-csrf", True))
        ]
    )
    response = page.request.post(f"{micro_server.web}/config/set", form=_EVIL)
    assert response.status == 403
    assert "CSRF" in response.text()
    assert _config(micro_server, "evil") != "1"


def test_the_attackers_own_cookies_never_act_as_the_victim(
    micro_server: MicroServerProcess, browser: Any, page: Any
) -> None:
    """The attacker logs in as itself, then plants each of its cookies in turn (its
    token, its session...) beside the victim's and posts with its own CSRF token: each
    try is refused, or acts as the attacker (who may not set config), never as the
    victim."""
    ok(micro_server.micro("auth", "create", "account", "mallory", "--secret", "mallory-pw"))
    attacker = browser.new_context().new_page()
    try:
        log_in(attacker, micro_server, username="mallory", password="mallory-pw")
        token = _csrf(attacker, micro_server)
        planted = attacker.context.cookies()
    finally:
        attacker.context.close()
    log_in(page, micro_server)
    for cookie in planted:
        page.context.add_cookies([cookie])
        response = page.request.post(
            f"{micro_server.web}/config/set", form={**_EVIL, "csrf": token}, max_redirects=0
        )
        assert response.status in (403, 303), cookie["name"]
        assert _config(micro_server, "evil") != "1", f"acted as the victim with {cookie['name']}"
        log_in(page, micro_server)


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://127.0.0.1:1"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
def test_a_cross_origin_change_is_refused_even_with_the_sessions_token(
    micro_server: MicroServerProcess, page: Any, headers: dict[str, str]
) -> None:
    log_in(page, micro_server)
    form = {**_EVIL, "csrf": _csrf(page, micro_server)}
    refused = page.request.post(f"{micro_server.web}/config/set", form=form, headers=headers)
    assert refused.status == 403
    assert _config(micro_server, "evil") != "1"
    own = {"Origin": micro_server.web, "Sec-Fetch-Site": "same-origin"}
    done = page.request.post(f"{micro_server.web}/config/set", form=form, headers=own)
    assert done.status == 200  # the redirect to /config, followed
    assert _config(micro_server, "evil") == "1"


def test_a_page_of_another_origin_cannot_log_the_browser_in(
    micro_server: MicroServerProcess, page: Any
) -> None:
    """Login CSRF: the attacker's page posts the attacker's own credentials, so that what
    the victim then does (a secret typed into Config) lands in the attacker's account."""
    web = micro_server.web
    ok(micro_server.micro("auth", "create", "account", "mallory", "--secret", "mallory-pw"))
    fields = {"username": "mallory", "password": "mallory-pw", "namespace": "micro"}
    with attacker_site() as site:
        url = site.page("/", autopost(f"{web}/login", fields))
        with page.expect_response(lambda r: r.url == f"{web}/login") as answer:
            page.goto(url)
        assert answer.value.status == 403
    assert not [c for c in page.context.cookies() if "token" in c["name"]]
    page.goto(f"{web}/services")
    page.wait_for_url("**/login?next=%2Fservices")


def test_a_page_of_another_origin_cannot_frame_the_dashboard(
    micro_server: MicroServerProcess, page: Any
) -> None:
    web = micro_server.web
    log_in(page, micro_server)
    with attacker_site() as site:
        frames = f'<iframe src="{web}/accounts"></iframe><iframe src="{web}/login"></iframe>'
        page.goto(site.page("/", frames))
        page.wait_for_load_state("load")
        inner = [frame for frame in page.frames if frame is not page.main_frame]
        assert len(inner) == 2
        for frame in inner:
            assert frame.locator("main").count() == 0, frame.url
    page.goto(f"{web}/accounts")  # the same pages show at the top level
    assert page.locator("tr[data-account=admin]").count() == 1


def test_no_state_change_over_get(micro_server: MicroServerProcess, page: Any) -> None:
    """Images on the attacker's page GET every route that changes something: each is
    refused (405) and the victim is still logged in, in the same namespace."""
    web = micro_server.web
    log_in(page, micro_server)
    targets = [
        "/logout",
        "/namespace?namespace=evil",
        "/accounts/create?id=evil&secret=evil-secret-1&scopes=admin",
        "/config/set?path=evil&value=1",
        "/runtime/helloworld/kill",
    ]
    images = "".join(f'<img src="{web}{target}">' for target in targets)
    with attacker_site() as site:
        page.goto(site.page("/", images))
        page.wait_for_load_state("load")  # every image tried
    for target in targets:
        assert page.request.get(f"{web}{target}", max_redirects=0).status == 405, target
    page.goto(f"{web}/services")
    assert page.url == f"{web}/services"
    assert page.locator("input[name=namespace]").input_value() == "micro"
    assert "evil" not in _accounts(micro_server)
    assert _config(micro_server, "evil") != "1"


def test_every_response_carries_the_security_headers(micro_server: MicroServerProcess) -> None:
    web = micro_server.web
    for path in ("/login", "/services", "/static/htmx.min.js", "/nothing-here"):
        status, headers, _ = http("GET", f"{web}{path}")
        assert status in (200, 303, 404), path
        assert headers["x-frame-options"] == "DENY", path
        policy = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy, path
        assert "script-src 'self'" in policy, path
        assert "'unsafe-inline'" not in policy, path
        assert "'unsafe-eval'" not in policy, path
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "same-origin", path
