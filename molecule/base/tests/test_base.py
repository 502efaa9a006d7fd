"""What an operator sees on a host the base role has converged."""


def test_essential_packages_are_installed(host):
    for name in ["ca-certificates", "curl", "locales", "tzdata", "systemd-timesyncd", "jq"]:
        assert host.package(name).is_installed, name


def test_recommended_packages_are_left_out(host):
    out = host.check_output("apt-config dump APT::Install-Recommends")
    assert 'APT::Install-Recommends "false";' in out


def test_time_zone(host):
    assert host.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Europe/Paris"
    assert host.check_output("date +%Z") in {"CET", "CEST"}


def test_time_sync_is_enabled(host):
    assert host.service("systemd-timesyncd").is_enabled


def test_locales_are_generated_and_set(host):
    available = host.check_output("locale -a").lower()
    assert "en_us.utf8" in available
    assert "fr_fr.utf8" in available
    assert "LANG=en_US.UTF-8" in host.file("/etc/default/locale").content_string
    assert host.run("LANG=fr_FR.UTF-8 locale 2>&1 >/dev/null").stdout == ""


def test_package_index_is_fresh(host):
    # The role updated apt's lists; a fresh debootstrap image ships none.
    assert host.run("ls /var/lib/apt/lists/ | grep -q _Packages").rc == 0


def test_journal_is_persistent_and_capped(host):
    config = host.check_output("systemd-analyze cat-config systemd/journald.conf")
    assert "Storage=persistent" in config
    assert "SystemMaxUse=150M" in config
    # journald moved its files to disk: the journal of this boot lives under /var.
    machine_id = host.file("/etc/machine-id").content_string.strip()
    assert host.file(f"/var/log/journal/{machine_id}").is_directory
    host.run("logger -t fv-test persistent-journal-probe")
    host.run("journalctl --sync")
    found = host.run(f"journalctl -D /var/log/journal/{machine_id} -t fv-test -o cat")
    assert "persistent-journal-probe" in found.stdout


def test_unattended_upgrades_take_security_updates_only(host):
    dump = host.check_output("apt-config dump Unattended-Upgrade")
    patterns = [line for line in dump.splitlines() if line.startswith('Unattended-Upgrade::Origins-Pattern:: ')]
    assert patterns, dump
    assert all("label=Debian-Security" in line for line in patterns), patterns
    assert 'Unattended-Upgrade::Automatic-Reboot "true";' in dump
    assert 'Unattended-Upgrade::Automatic-Reboot-Time "03:30";' in dump
    periodic = host.check_output("apt-config dump APT::Periodic")
    assert 'APT::Periodic::Unattended-Upgrade "1";' in periodic
    assert host.service("apt-daily-upgrade.timer").is_enabled
    assert host.service("apt-daily-upgrade.timer").is_running
    # unattended-upgrades itself reads the same origins.
    dry = host.run("unattended-upgrade --dry-run --debug 2>&1 | grep -i 'allowed origins'")
    assert "Debian-Security" in dry.stdout
    assert "label=Debian," not in dry.stdout


def test_hardening_sysctls_are_written_for_boot(host):
    conf = host.file("/etc/sysctl.d/60-flask-vps-hardening.conf").content_string
    for line in [
        "kernel.kptr_restrict=2",
        "fs.suid_dumpable=0",
        "kernel.yama.ptrace_scope=2",
        "net.ipv4.tcp_syncookies=1",
        "net.ipv4.conf.all.rp_filter=1",
        "net.ipv4.conf.all.accept_redirects=0",
        "fs.protected_symlinks=1",
    ]:
        assert line in conf, line


def test_core_dumps_are_off(host):
    assert host.check_output("systemctl show --property DefaultLimitCORE") == "DefaultLimitCORE=0"
    # A service started now inherits the limit.
    out = host.check_output("systemd-run --wait --pipe --quiet sh -c 'ulimit -Hc'")
    assert out == "0"
    assert "hard    core    0" in host.file("/etc/security/limits.d/60-flask-vps-coredump.conf").content_string


def test_login_notice_replaces_the_release_banner(host):
    for path in ["/etc/issue", "/etc/issue.net"]:
        text = host.file(path).content_string
        assert text.startswith("Authorised access only."), path
        assert "Debian" not in text, path
        assert host.file(path).mode == 0o644


def test_unused_kernel_modules_cannot_load(host):
    # modprobe's own view of its configuration where kmod is installed (a VM), else
    # the file it will read (the minimal test image has no kmod).
    if host.exists("modprobe"):
        config = host.check_output("modprobe --showconfig")
    else:
        config = host.file("/etc/modprobe.d/60-flask-vps-disabled.conf").content_string
    config = config.replace("-", "_")  # modprobe spells usb-storage usb_storage
    for module in ["dccp", "sctp", "rds", "tipc", "usb_storage", "firewire_core"]:
        assert f"install {module} /bin/false" in config, module
        assert f"blacklist {module}" in config, module


def test_login_session_gets_a_private_tmpdir(host):
    # A full PAM login (su -l) as an ordinary user, as an SSH session would get.
    host.run("id fvtmp || useradd --create-home --shell /bin/sh fvtmp")
    out = host.check_output("su -l fvtmp -c 'echo $TMPDIR; stat -c %a:%U \"$TMPDIR\"'")
    uid = host.check_output("id -u fvtmp")
    assert out.splitlines() == [f"/tmp/user/{uid}", "700:fvtmp"]


def test_package_audit_tools_work(host):
    assert host.run("debsums -s base-files").rc == 0
    assert host.run("apt-show-versions base-files").rc == 0
    assert host.package("apt-listchanges").is_installed
    assert "CRON_CHECK=weekly" in host.file("/etc/default/debsums").content_string.splitlines()


def test_no_security_update_is_pending(host):
    # apt's view after the role's safe upgrade: nothing upgradable from the security suite.
    out = host.check_output("apt-get -s upgrade 2>/dev/null | grep '^Inst' | grep -i security || true")
    assert out == ""


def test_rootkit_scanner_runs_daily(host):
    assert 'RUN_DAILY="true"' in host.file("/etc/chkrootkit/chkrootkit.conf").content_string.splitlines()
    assert host.run("chkrootkit -V").rc in (0, 1)


def test_password_hashing_and_quality(host):
    defs = host.file("/etc/login.defs").content_string.splitlines()
    assert "SHA_CRYPT_MIN_ROUNDS 65536" in defs and "SHA_CRYPT_MAX_ROUNDS 65536" in defs
    assert "pam_pwquality.so" in host.file("/etc/pam.d/common-password").content_string


def test_idle_shells_end_and_failed_logins_are_logged(host):
    assert host.check_output("bash -lc 'echo $TMOUT'") == "900"
    assert host.run("bash -lc 'TMOUT=0'").rc != 0  # read-only
    assert "FAILLOG_ENAB yes" in host.file("/etc/login.defs").content_string.splitlines()


def test_only_root_may_run_the_assembler(host):
    assembler = host.check_output("readlink -f /usr/bin/as")
    f = host.file(assembler)
    assert (f.user, f.group, f.mode) == ("root", "root", 0o750)
    assert assembler in host.check_output("dpkg-statoverride --list")
    assert host.run("runuser -u nobody -- /usr/bin/as --version").rc != 0


def test_cron_directories_are_roots_alone(host):
    for path in ["/etc/cron.d", "/etc/cron.daily", "/etc/cron.weekly", "/etc/cron.monthly"]:
        d = host.file(path)
        assert (d.user, d.mode) == ("root", 0o700), path
    assert host.run("runuser -u nobody -- ls /etc/cron.daily").rc != 0


def test_needrestart_only_lists(host):
    out = host.check_output("needrestart -b -r l 2>&1; perl -e 'our %nrconf; do q(/etc/needrestart/needrestart.conf); print $nrconf{restart}'")
    assert out.endswith("l"), out
    assert "NEEDRESTART-VER" in out


def test_accounting_is_enabled(host):
    assert host.service("acct").is_enabled
    assert host.service("sysstat").is_enabled
    assert 'ENABLED="true"' in host.file("/etc/default/sysstat").content_string
    assert host.file("/var/log/account/pacct").is_file
