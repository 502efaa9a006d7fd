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
