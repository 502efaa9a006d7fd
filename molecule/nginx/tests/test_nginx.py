"""nginx in front of the app, seen by a client on the test host (and an operator)."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import ssl
import time

import pytest

from conftest import request, run_playbook

NAME = "www.flask-vps.test"
ALIAS = "flask-vps.test"
SECURITY_HEADERS = {
    "strict-transport-security": "max-age=63072000; includeSubDomains",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
    "content-security-policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
}


def test_http_redirects_to_https_with_308(ip):
    response = request(ip, ALIAS, "/notes?page=2", tls=False)
    assert response.status == 308
    assert response.headers["Location"] == f"https://{ALIAS}/notes?page=2"


def test_acme_challenges_stay_on_http(host, ip):
    host.run("install -d /var/www/acme/.well-known/acme-challenge")
    host.run("echo token-body > /var/www/acme/.well-known/acme-challenge/test-token")
    response = request(ip, NAME, "/.well-known/acme-challenge/test-token", tls=False)
    assert response.status == 200
    assert response.body == b"token-body\n"
    assert request(ip, NAME, "/.well-known/acme-challenge/absent", tls=False).status == 404


def test_https_serves_http2(ip, cafile):
    context = ssl.create_default_context(cafile=cafile)
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection((ip, 443), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=NAME) as tls:
            assert tls.selected_alpn_protocol() == "h2"


def test_static_files_come_from_nginx_with_cache_headers(host, ip, cafile):
    response = request(ip, NAME, "/static/style.css", cafile=cafile, headers={"Accept-Encoding": "gzip"})
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/css"
    assert response.headers["Cache-Control"] == "max-age=604800"
    assert "Expires" in response.headers
    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.body) == host.file("/srv/flaskapp/current/webapp/static/style.css").content
    # Missing static files are nginx's 404, never a request to the app.
    missing = request(ip, NAME, "/static/missing.css", cafile=cafile)
    assert missing.status == 404
    assert b'"path"' not in missing.body


def test_static_files_follow_the_current_symlink(host, ip, cafile):
    host.run("mkdir -p /srv/flaskapp/releases/r2/webapp/static")
    host.run("echo 'release two' > /srv/flaskapp/releases/r2/webapp/static/release.txt")
    try:
        host.run("ln -sfn /srv/flaskapp/releases/r2 /srv/flaskapp/current.new && mv -T /srv/flaskapp/current.new /srv/flaskapp/current")
        response = request(ip, NAME, "/static/release.txt", cafile=cafile)
        assert response.status == 200
        assert response.body == b"release two\n"
    finally:
        host.run("ln -sfn /srv/flaskapp/releases/r1 /srv/flaskapp/current.new && mv -T /srv/flaskapp/current.new /srv/flaskapp/current")
    assert request(ip, NAME, "/static/release.txt", cafile=cafile).status == 404


def test_proxied_requests_carry_forwarded_headers_clients_cannot_spoof(ip, cafile):
    spoofed = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "http",
               "X-Forwarded-Host": "evil.example", "X-Forwarded-Port": "8080", "X-Real-IP": "203.0.113.7"}
    response = request(ip, ALIAS, "/api/notes?x=1", cafile=cafile, headers=spoofed)
    assert response.status == 200
    seen = json.loads(response.body)
    assert seen["path"] == "/api/notes?x=1"
    headers = seen["headers"]
    assert headers["host"] == ALIAS
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-forwarded-host"] == ALIAS
    assert "203.0.113.7" not in headers["x-forwarded-for"]
    assert headers["x-forwarded-for"].count(".") == 3  # one address: the client nginx saw
    assert headers.get("x-forwarded-port", "") == ""


@pytest.mark.parametrize("path", ["/healthz", "/missing-page", "/static/missing.css"])
def test_security_headers_on_success_and_errors(ip, cafile, path):
    response = request(ip, NAME, path, cafile=cafile)
    assert response.status in {200, 404}
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get_all(name) == [value], name
    assert response.headers["Server"] == "nginx"


def test_body_size_limit(ip, cafile):
    assert request(ip, NAME, "/api/notes", cafile=cafile, method="POST", body=b"x" * 1000).status == 200
    assert request(ip, NAME, "/api/notes", cafile=cafile, method="POST", body=b"x" * (2 * 1024 * 1024)).status == 413


def test_rate_limit_answers_429_above_rate_and_burst(ip, cafile):
    time.sleep(2)  # earlier tests' requests drain from the bucket (5 r/s)
    statuses = [request(ip, NAME, "/healthz", cafile=cafile).status for _ in range(40)]
    time.sleep(2)  # and these before the tests that follow
    assert statuses[:5] == [200] * 5  # the burst of 5 above the rate passes at once
    assert 429 in statuses
    # Static files are not rate limited.
    assert all(request(ip, NAME, "/static/style.css", cafile=cafile).status == 200 for _ in range(30))


def test_unknown_host_gets_no_answer(ip, cafile):
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
        request(ip, "unknown.example", "/", tls=False)
    with pytest.raises(ssl.SSLError):
        request(ip, "unknown.example", "/", cafile=cafile)


def test_default_site_is_gone(host):
    assert not host.file("/etc/nginx/sites-enabled/default").exists


def test_upstream_is_the_configured_socket_and_nginx_owns_it(host):
    site = host.file("/etc/nginx/sites-enabled/flaskapp.conf")
    assert site.mode == 0o644 and site.user == "root"
    assert "server unix:/run/flaskapp/gunicorn.sock fail_timeout=0;" in site.content_string
    # No file of another role's in nginx's configuration.
    assert not host.file("/etc/nginx/flask-vps/flaskapp.upstream.conf").exists


def test_nginx_runs_sandboxed(host):
    score = host.run("systemd-analyze security --no-pager nginx.service | tail -1")
    exposure = float(score.stdout.split()[-3])
    print("systemd-analyze security nginx.service:", score.stdout.strip())
    assert exposure < 3.0, score.stdout


def test_app_down_shows_the_friendly_page(host, ip, cafile):
    host.run("systemctl stop echo-app")
    try:
        response = request(ip, NAME, "/", cafile=cafile)
        assert response.status == 502
        assert b"Back in a moment" in response.body
        assert response.headers["Content-Security-Policy"] == SECURITY_HEADERS["content-security-policy"]
    finally:
        host.run("systemctl start echo-app")


def test_broken_configuration_fails_the_play_and_stays_out(host, ip, cafile):
    before_pid = host.check_output("systemctl show -p MainPID --value nginx")
    before_site = host.file("/etc/nginx/sites-enabled/flaskapp.conf").content_string
    result = run_playbook("broken.yml")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert 'unknown directive "this_is_not_a_directive"' in output, output[-3000:]
    assert host.file("/etc/nginx/sites-enabled/flaskapp.conf").content_string == before_site
    assert host.run("ls /etc/nginx/sites-enabled/ | grep -c '~$'").stdout.strip() == "0"
    assert host.run("nginx -t").rc == 0
    assert host.check_output("systemctl show -p MainPID --value nginx") == before_pid
    assert request(ip, NAME, "/healthz", cafile=cafile).status == 200
