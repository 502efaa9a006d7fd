"""Who can log in to a host the ssh and firewall roles have converged, seen from the
test host over the Docker network, as the operator or an attacker would try."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

PASSWORD = "correct horse battery staple"
KEY = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "operator_ed25519"
SSH_OPTIONS = [
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "ConnectTimeout=5",
]


def ssh(address: str, user: str, *args: str, command: str = "true", batch: bool = True,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the system ssh client against the container."""
    # ssh keeps the first value of an option: args may override the log level.
    options = [*SSH_OPTIONS, "-o", f"BatchMode={'yes' if batch else 'no'}", *args, "-o", "LogLevel=ERROR"]
    return subprocess.run(
        ["ssh", *options, f"{user}@{address}", command],
        capture_output=True, text=True, timeout=60, check=False, env=env, stdin=subprocess.DEVNULL,
    )


def with_key(address: str, user: str, command: str = "true", *args: str) -> subprocess.CompletedProcess[str]:
    return ssh(address, user, "-i", str(KEY), "-o", "IdentitiesOnly=yes", *args, command=command)


def with_password(address: str, user: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Try the right password, typed in by an askpass helper (no sshpass needed)."""
    askpass = tmp_path / "askpass"
    askpass.write_text(f"#!/bin/sh\necho '{PASSWORD}'\n")
    askpass.chmod(0o700)
    env = dict(os.environ, SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")
    return ssh(
        address, user,
        "-o", "PreferredAuthentications=password,keyboard-interactive",
        "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1",
        batch=False, env=env,
    )


def test_admin_logs_in_with_the_operators_key(address):
    result = with_key(address, "deploy", "id -un")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "deploy"


def test_admin_has_sudo(address):
    result = with_key(address, "deploy", "sudo -n id -u")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


def test_a_user_other_than_the_admin_cannot_log_in_even_with_a_key(host, address):
    host.run_test("id fvother || useradd --create-home --shell /bin/sh fvother")
    host.run_test("install -d -o fvother -g fvother -m 0700 /home/fvother/.ssh && "
                  "install -o fvother -g fvother -m 0600 /home/deploy/.ssh/authorized_keys /home/fvother/.ssh/")
    assert with_key(address, "fvother").returncode != 0
    assert with_key(address, "deploy").returncode == 0


def test_sudoers_file_is_private(host):
    sudoers = host.file("/etc/sudoers.d/flask-vps-deploy")
    assert sudoers.mode == 0o440
    assert sudoers.user == "root"


def test_root_is_refused_even_with_its_key(host, address):
    # Root still has the operator's key in authorized_keys, as the provider left it.
    assert "operator@flask-vps-test" in host.file("/root/.ssh/authorized_keys").content_string
    result = with_key(address, "root")
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


@pytest.mark.parametrize("user", ["deploy", "root"])
def test_the_right_password_is_refused(address, user, tmp_path):
    result = with_password(address, user, tmp_path)
    assert result.returncode == 255
    # The server offers public keys and nothing else.
    assert "Permission denied (publickey)." in result.stderr, result.stderr


def test_effective_sshd_settings(host):
    settings = host.check_output("sshd -T -C user=deploy,host=test,addr=192.0.2.1").splitlines()
    for line in [
        "port 22",
        "permitrootlogin no",
        "passwordauthentication no",
        "kbdinteractiveauthentication no",
        "pubkeyauthentication yes",
        "authenticationmethods publickey",
        "maxauthtries 3",
        "logingracetime 30",
        "allowtcpforwarding no",
        "allowagentforwarding no",
        "x11forwarding no",
        "permittunnel no",
        "maxsessions 2",
        "allowusers deploy",
    ]:
        assert line in settings, line
    config = host.file("/etc/ssh/sshd_config")
    assert (config.user, config.group, config.mode) == ("root", "root", 0o600)
    root = host.check_output("sshd -T -C user=root,host=test,addr=192.0.2.1").splitlines()
    assert "permitrootlogin no" in root
    assert "passwordauthentication no" in root


def test_modern_algorithms_for_this_openssh(host):
    settings = host.check_output("sshd -T")
    kex = re.search(r"^kexalgorithms (.+)$", settings, re.M).group(1).split(",")
    ciphers = re.search(r"^ciphers (.+)$", settings, re.M).group(1).split(",")
    macs = re.search(r"^macs (.+)$", settings, re.M).group(1).split(",")
    supported = host.check_output("ssh -Q kex").split()
    if "mlkem768x25519-sha256" in supported:  # OpenSSH 9.9+, Debian 13
        assert kex[0] == "mlkem768x25519-sha256"
    assert "sntrup761x25519-sha512@openssh.com" in kex
    assert not [k for k in kex if "sha1" in k or "nistp" in k], kex
    assert not [c for c in ciphers if "cbc" in c], ciphers
    assert all(m.endswith("-etm@openssh.com") for m in macs), macs


def test_weak_key_exchange_is_refused(address):
    result = with_key(address, "deploy", "true", "-o", "KexAlgorithms=diffie-hellman-group14-sha256", "-o", "LogLevel=INFO")
    assert result.returncode == 255
    assert "no matching key exchange method" in result.stderr, result.stderr


def test_forwarding_is_refused(address):
    # A remote forward is asked of the server at login: it says no.
    result = with_key(address, "deploy", "true", "-o", "ExitOnForwardFailure=yes", "-R", "18080:127.0.0.1:22",
                      "-o", "LogLevel=INFO")
    assert result.returncode == 255
    assert "remote port forwarding failed" in result.stderr, result.stderr


def test_fail2ban_watches_sshd_in_the_journal(host):
    status = host.check_output("fail2ban-client status sshd")
    assert "Journal matches" in status  # the systemd backend
    assert "sshd" in host.check_output("fail2ban-client status")
    assert host.check_output("fail2ban-client get sshd bantime") == "600"
    assert host.check_output("fail2ban-client get sshd maxretry") == "20"


def test_only_ssh_http_and_https_are_reachable(host, address):
    # Listeners on an allowed and on a closed port: inside they answer, from outside
    # only the allowed one does.
    for port in (80, 443, 8080):
        host.run(f"systemd-run --unit=fv-probe-{port} python3 -m http.server {port}")
    try:
        for port in (80, 443, 8080):
            for _ in range(50):
                if host.run(f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 1)\"").rc == 0:
                    break
                time.sleep(0.1)
            else:
                raise AssertionError(f"the probe listener on {port} did not start")
        for port in (22, 80, 443):
            socket.create_connection((address, port), 3).close()
        with pytest.raises(OSError):
            socket.create_connection((address, 8080), 3).close()
    finally:
        for port in (80, 443, 8080):
            host.run(f"systemctl stop fv-probe-{port}")


PROJECT_DIR = Path(__file__).resolve().parents[3]
OVER_SSH = PROJECT_DIR / "molecule" / "ssh" / "over-ssh.yml"
COMMON_ARGS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes"


def run_playbook(inventory: Path, playbook: Path) -> subprocess.CompletedProcess[str]:
    """ansible-playbook from the project's venv and ansible.cfg, over real SSH."""
    # No fact cache: the project's caches facts (the discovered Python among them)
    # by inventory name, and the Debian 13 and 12 containers would share "vps".
    # Host keys unchecked through Ansible's own setting: Mitogen's SSH applies
    # host_key_checking from ansible.cfg ahead of ssh options such as the
    # StrictHostKeyChecking=no above.
    env = dict(os.environ, ANSIBLE_CONFIG=str(PROJECT_DIR / "ansible.cfg"), ANSIBLE_FORCE_COLOR="false",
               ANSIBLE_CACHE_PLUGIN="memory", ANSIBLE_HOST_KEY_CHECKING="False")
    return subprocess.run(
        [str(PROJECT_DIR / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory), str(playbook)],
        capture_output=True, text=True, timeout=600, check=False, env=env, cwd=PROJECT_DIR)


def link_group_vars(inventory_dir: Path) -> None:
    """The project's group_vars beside a test inventory, as every environment has them."""
    group_vars = inventory_dir / "group_vars"
    group_vars.mkdir(exist_ok=True)
    if not (group_vars / "all").exists():
        (group_vars / "all").symlink_to(PROJECT_DIR / "group_vars" / "all")


def connect(address: str, tmp_path: Path, admin: str, first_contact: str) -> subprocess.CompletedProcess[str]:
    """Run the project's first-contact probe (playbooks/connect.yml) over real SSH."""
    link_group_vars(tmp_path)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "flask_vps:\n  hosts:\n    vps:\n"
        f"      ansible_host: {address}\n      ansible_ssh_private_key_file: {KEY}\n"
        f"      ansible_ssh_common_args: {COMMON_ARGS}\n"
        f"      flask_vps_admin_user: {admin}\n      flask_vps_first_contact_user: {first_contact}\n")
    return run_playbook(inventory, PROJECT_DIR / "playbooks" / "connect.yml")


def secure(address: str, tmp_path: Path, **hostvars: object) -> subprocess.CompletedProcess[str]:
    """Run connect.yml and the ssh and firewall roles (over-ssh.yml) over real SSH, with an
    inventory like an environment's: the project's group_vars, then this host's values
    (those of the converge unless hostvars says otherwise)."""
    link_group_vars(tmp_path)
    host = {
        "ansible_host": address,
        "ansible_ssh_private_key_file": str(KEY),
        "ansible_ssh_common_args": COMMON_ARGS,
        "flask_vps_admin_user": "deploy",
        "flask_vps_admin_keys": [KEY.with_suffix(".pub").read_text().strip()],
        "ssh_fail2ban_maxretry": 20,
        "ssh_fail2ban_bantime": "10m",
        **hostvars,
    }
    inventory = tmp_path / "hosts.yml"
    # JSON is YAML.
    inventory.write_text(json.dumps({"flask_vps": {"hosts": {"vps": host}}}))
    return run_playbook(inventory, OVER_SSH)


def changed(result: subprocess.CompletedProcess[str]) -> int:
    return int(re.search(r"^vps\s+:.*\bchanged=(\d+)", result.stdout, re.M).group(1))


def tail(result: subprocess.CompletedProcess[str]) -> str:
    return (result.stdout + result.stderr)[-4000:]


def reachable(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), 3).close()
    except OSError:
        return False
    return True


def ssh_state(host) -> str:
    """What a lockout would change: sshd's files, the admin keys, the firewall, the listeners."""
    return host.check_output(
        "sha256sum /etc/ssh/sshd_config /home/deploy/.ssh/authorized_keys /etc/sudoers.d/flask-vps-deploy"
        " && ufw show added && ss -Hltn | sort && systemctl is-active ssh")


@pytest.fixture(autouse=True)
def fresh_rate_limit(host):
    """Every test starts with the full SSH allowance of an address (roles/firewall's
    nftables meter); the back-to-back test then shows what one allowance covers."""
    host.run("nft flush set inet flaskvps_ssh meter4; nft flush set inet flaskvps_ssh meter6")


def test_probe_uses_the_admin_user_once_it_can_log_in(address, tmp_path):
    result = connect(address, tmp_path, admin="deploy", first_contact="root")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "Logging in as deploy" in result.stdout
    assert "first contact" not in result.stdout


def test_probe_falls_back_to_the_first_contact_user(address, tmp_path):
    """Before the admin user exists (here: a name that never will), the provider's login is used."""
    result = connect(address, tmp_path, admin="not-yet-created", first_contact="deploy")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "Logging in as deploy (first contact: the admin user not-yet-created cannot log in yet)" in result.stdout


def test_probe_fails_clearly_when_nobody_can_log_in(address, tmp_path):
    """Root's login is closed after hardening: a probe with no working user stops the play."""
    result = connect(address, tmp_path, admin="not-yet-created", first_contact="root")
    assert result.returncode != 0
    assert "UNREACHABLE" in result.stdout, result.stdout[-3000:]
    assert "Logging in as root (first contact" in result.stdout


def test_a_port_another_daemon_holds_is_refused_before_any_change(host, address, tmp_path):
    """Issue 13: flask_vps_ssh_port 80 while a web server holds 80 took sshd down."""
    host.run_test("systemd-run --unit=fv-holds-80 python3 -m http.server 80")
    try:
        for _ in range(50):
            if "python3" in host.check_output("ss -Hltnp 'sport = :80'"):
                break
            time.sleep(0.1)
        before = ssh_state(host)
        result = secure(address, tmp_path, flask_vps_ssh_port=80)
        assert result.returncode != 0, tail(result)
        assert "ssh_port 80 (flask_vps_ssh_port) is held by python3" in result.stdout, tail(result)
        assert "Nothing was changed" in result.stdout
        assert changed(result) == 0
        assert ssh_state(host) == before
    finally:
        host.run("systemctl stop fv-holds-80")
    assert with_key(address, "deploy", "sudo -n true").returncode == 0


def refused_with_nothing_changed(host, address: str, tmp_path: Path, keys: list[str], *messages: str) -> None:
    """A run with these admin keys fails before any change, saying messages; the admin
    user still logs in and sudoes with the operator's key."""
    before = ssh_state(host)
    result = secure(address, tmp_path, flask_vps_admin_keys=keys)
    assert result.returncode != 0, tail(result)
    for message in messages:
        assert message in result.stdout, tail(result)
    assert changed(result) == 0
    assert ssh_state(host) == before
    assert with_key(address, "deploy", "sudo -n true").returncode == 0


def test_a_well_formed_key_that_is_not_the_operators_is_refused(host, address, tmp_path):
    """Root login would close with only someone else's key left for the admin user."""
    foreign = tmp_path / "someone_else"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "someone-else", "-f", str(foreign)], check=True)
    refused_with_nothing_changed(host, address, tmp_path, [foreign.with_suffix(".pub").read_text().strip()],
                                 "None of the keys this run logs in with",
                                 "is in ssh_admin_authorized_keys (flask_vps_admin_keys)")


def test_a_key_whose_options_refuse_the_operator_is_refused_before_any_change(host, address, tmp_path):
    """The operator's own key, but with an option (from=) that refuses this client: the
    key comparison passes it, and only a login with the run's own key finds it out.
    The admin keys are staged, so nothing live changes before that login."""
    own = KEY.with_suffix(".pub").read_text().strip()
    refused_with_nothing_changed(host, address, tmp_path, [f'from="192.0.2.1" {own}'],
                                 "deploy could not log in with this run's own key", "Nothing was changed")


OPERATOR_PROBE = re.compile(
    r"TASK \[ssh : Prove that the admin user logs in with this run's own key[^\n]*\n(?:[^\n]*\n)??ok: \[vps -> localhost\]")


def test_the_ssh_port_moves_and_the_next_run_finds_it(host, address, tmp_path):
    """The port change procedure, from outside: the move, the next runs, and back."""
    try:
        moved = secure(address, tmp_path, flask_vps_ssh_port=2222)
        assert moved.returncode == 0, tail(moved)
        assert "Logging in as deploy on port 22" in moved.stdout
        assert with_key(address, "deploy", "sudo -n id -un", "-p", "2222").stdout.strip() == "root"
        assert not reachable(address, 22)
        assert "port 2222" in host.check_output("sshd -T").splitlines()
        assert "port 22" not in host.check_output("sshd -T").splitlines()
        rules = host.check_output("ufw show added")
        assert "ufw allow 2222/tcp comment 'ssh'" in rules
        assert not re.search(r"^ufw \w+ 22/tcp", rules, re.M), rules
        assert "port = 2222" in host.file("/etc/fail2ban/jail.local").content_string

        # The inventory unchanged: the next run finds sshd on the configured port.
        again = secure(address, tmp_path, flask_vps_ssh_port=2222)
        assert again.returncode == 0, tail(again)
        assert "Logging in as deploy on port 2222" in again.stdout
        assert changed(again) == 0, tail(again)

        # An inventory that still dials 22 finds it too, after 22 gives no answer.
        stale = secure(address, tmp_path, flask_vps_ssh_port=2222, ansible_port=22)
        assert stale.returncode == 0, tail(stale)
        assert "Logging in as deploy on port 2222" in stale.stdout
    finally:
        # And back, by the same procedure, for the tests after this one.
        back = secure(address, tmp_path, flask_vps_ssh_port=22, ansible_port=2222)
    assert back.returncode == 0, tail(back)
    assert with_key(address, "deploy", "id -un").stdout.strip() == "deploy"
    assert not reachable(address, 2222)
    assert "port 22" in host.check_output("sshd -T").splitlines()


def total_failed(host) -> int:
    status = host.check_output("fail2ban-client status sshd")
    return int(re.search(r"Total failed:\s+(\d+)", status).group(1))


def test_back_to_back_runs_pass_and_trip_no_defence(host, address, tmp_path):
    """Issue 13: ufw's limit refused the third of three quick runs. Now four runs with
    no pause pass, change nothing, and fail2ban counts no failure against them."""
    failed_before = total_failed(host)
    results = [secure(address, tmp_path) for _ in range(3)]
    results.append(connect(address, tmp_path, admin="deploy", first_contact="root"))
    for result in results:
        assert result.returncode == 0, tail(result)
    # Each run's login probe logged in with the operator's own key, from here.
    assert all(OPERATOR_PROBE.search(result.stdout) for result in results[:3]), tail(results[0])
    assert [changed(result) for result in results[:3]] == [0, 0, 0]
    assert total_failed(host) == failed_before
    assert not banned_addresses(host)
    # The rate limit was there all along: it counted this test host's connections.
    client = with_key(address, "deploy", "echo $SSH_CONNECTION").stdout.split()[0]
    assert client in host.check_output("nft list set inet flaskvps_ssh meter4")


def banned_addresses(host) -> list[str]:
    status = host.check_output("fail2ban-client status sshd")
    line = re.search(r"Banned IP list:(.*)$", status, re.M)
    return line.group(1).split() if line else []


def test_zz_fail2ban_bans_repeated_failures(host, address):
    # Last in the file: it bans the test host, then lifts the ban.
    for _ in range(45):
        try:
            ssh(address, "root", "-o", "PreferredAuthentications=publickey", "-o", "PubkeyAuthentication=no")
        except subprocess.TimeoutExpired:
            pass  # the ban landed mid-handshake: the connection hangs instead of failing
        banned = banned_addresses(host)
        if banned:
            break
        time.sleep(0.5)
    # fail2ban reads the journal behind the logins: on a loaded machine the ban
    # can land some seconds after the last failure.
    for _ in range(30):
        if banned:
            break
        time.sleep(1)
        banned = banned_addresses(host)
    try:
        assert banned, host.check_output("fail2ban-client status sshd")
        # fail2ban lists the address first and runs its ban action after: on a loaded
        # machine the firewall rule lands a moment later. Give it 20 s, then it must hold.
        refused = False
        for _ in range(20):
            try:
                socket.create_connection((address, 22), 3).close()
            except OSError:
                refused = True
                break
            time.sleep(1)
        assert refused, host.check_output("fail2ban-client status sshd; nft list ruleset")
        with pytest.raises(OSError):
            socket.create_connection((address, 22), 3).close()
    finally:
        host.run("fail2ban-client unban --all")
    socket.create_connection((address, 22), 5).close()
