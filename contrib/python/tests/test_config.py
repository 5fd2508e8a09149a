"""Connection settings are resolved as the Rust CLI resolves them (no daemon needed)."""

from __future__ import annotations

import pytest

import pcapd_client as pc
import pcapd_client.config as config


@pytest.fixture(autouse=True)
def no_etc_config(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "DEFAULT_CONFIG_PATH", str(tmp_path / "absent.cfg"))


def write(tmp_path, text, name="pcapd.cfg"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_config_file_keys(tmp_path):
    pw = write(tmp_path, "s3cret\nsecond line ignored\n", "pw")
    cfg = write(
        tmp_path,
        "# comment\n[global]\nPort = 2000\nbind: 0.0.0.0\nssl = on\nsslcert = /etc/x.pem\n"
        f"password_file = {pw}\nbackend = builtin\n[Worker]\ntimeout = 1s\n",
    )
    s = pc.resolve(cfg, env={})
    assert (s.host, s.port, s.ca, s.get_password()) == ("127.0.0.1", 2000, "/etc/x.pem", "s3cret")
    assert s.server_name is None and s.tls
    s = pc.resolve(write(tmp_path, "[Global]\nbind = [::]\npassword = a#b;c\nssl = false\n"), env={})
    assert (s.host, s.port, s.ca, s.get_password()) == ("::1", 11111, None, "a#b;c")
    assert s.address == "[::1]:11111"
    s = pc.resolve(write(tmp_path, "[Global]\npassword = x\nsslcert = c.pem\nbind =\n"), env={})
    assert s.host == "::1" and s.ca == "c.pem"  # empty value = default (::1)


def test_arguments_then_environment_then_file(tmp_path):
    cfg = write(tmp_path, "[Global]\nport = 2000\nbind = 10.1.2.3\npassword = file\nsslcert = f.pem\n")
    env = {"PCAPD_HOST": "127.0.0.2", "PCAPD_PORT": "3000", "PCAPD_PASSWORD": "env", "PCAPD_CA": "env.pem"}
    s = pc.resolve(cfg, env=env)
    assert (s.host, s.port, s.get_password(), s.ca) == ("127.0.0.2", 3000, "env", "env.pem")
    s = pc.resolve(cfg, host="h", port=4000, password="arg", ca="arg.pem", server_name="n", env=env)
    assert (s.host, s.port, s.get_password(), s.ca, s.server_name) == ("h", 4000, "arg", "arg.pem", "n")
    s = pc.resolve(cfg, env={})
    assert (s.host, s.port, s.get_password(), s.ca) == ("10.1.2.3", 2000, "file", "f.pem")
    assert pc.resolve(cfg, tls=False, env={}).ca is None


def test_port_zero_reads_listen_addr_of_the_state_dir(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    cfg = write(tmp_path, f"[Global]\nport = 0\nbind = 127.0.0.1\npassword = x\nsslcert = c\nstate_dir = {state}\n")
    with pytest.raises(pc.ConfigError, match="listen.addr"):
        pc.resolve(cfg, env={})
    (state / "listen.addr").write_text("127.0.0.1:45678\n")
    assert pc.resolve(cfg, env={}).port == 45678


def test_embedded_defaults_state_dir(tmp_path):
    state = tmp_path / "st"
    state.mkdir()
    (state / "password").write_text("generated\n")
    (state / "listen.addr").write_text("[::1]:12345\n")
    s = pc.resolve(env={"STATE_DIRECTORY": f"{state}:/other"})
    assert (s.host, s.port, s.get_password(), s.ca) == ("::1", 12345, "generated", str(state / "cert.pem"))
    (state / "listen.addr").unlink()
    s = pc.resolve(env={"STATE_DIRECTORY": str(state)})
    assert (s.host, s.port) == ("127.0.0.1", 11111)
    assert config.default_state_dir({"STATE_DIRECTORY": "relative"}) != "relative"


def test_bad_configs_are_config_errors(tmp_path):
    for text, match in [
        ("[Global]\nport = x\npassword = a\nsslcert = c\n", "port"),
        ("[Global]\nbind = nowhere\npassword = a\nsslcert = c\n", "bind"),
        ("[Global]\nssl = maybe\npassword = a\nsslcert = c\n", "ssl"),
        ("[Global]\nsslcert = c\n", "no password"),
        ("[Global]\npassword = a\n", "certificate to trust"),
        ("[Global]\npassword = a\npassword_file = b\nsslcert = c\n", "not both"),
        ("[Global]\npassword = a\npassword = b\n", "INI"),
        ("port = 1\n", "INI"),
    ]:
        with pytest.raises(pc.ConfigError, match=match):
            pc.resolve(write(tmp_path, text), env={})
    with pytest.raises(pc.ConfigError, match="cannot read"):
        pc.resolve(tmp_path / "missing.cfg", env={})
    empty = write(tmp_path, "\n", "empty-pw")
    s = pc.resolve(write(tmp_path, f"[Global]\npassword_file = {empty}\nssl = no\n"), env={})
    with pytest.raises(pc.ConfigError, match="empty"):
        s.get_password()
