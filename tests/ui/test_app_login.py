"""Log-in, log-out, session expiry and who may see which pages."""

from __future__ import annotations

import pytest

from tests.ui.apptest_helpers import SCREENS, all_text, button, labels, log_in, logged_in, new_app, shown
from tests.ui.fake_engine import TOKEN, FakeEngineAPI


def test_login_page_is_shown_first() -> None:
    at = new_app(FakeEngineAPI()).run()
    assert not at.exception
    assert labels(at.text_input) == ["Identifiant", "Mot de passe"]
    assert "Se connecter" in labels(at.button)
    assert not at.chat_input


def test_login_failure_then_success_never_shows_the_token() -> None:
    fake = FakeEngineAPI()
    at = new_app(fake).run()
    log_in(at, "alice", "wrong")
    assert shown(at, "Identifiant ou mot de passe incorrect")
    assert not at.chat_input
    log_in(at, "alice")
    assert not at.exception
    assert at.chat_input, "the chat page follows a successful log-in"
    sidebar = "\n".join(m.value for m in at.sidebar.markdown) + "\n".join(c.value for c in at.sidebar.caption)
    assert "alice" in sidebar and "analyste" in sidebar and "DR" in sidebar and "ops" in sidebar
    assert TOKEN not in all_text(at)
    for key, value in at.session_state.to_dict().items():
        assert TOKEN not in repr(value), key
    assert "alice-pw" not in all_text(at)


def test_engine_unreachable_on_login_is_a_clear_message() -> None:
    fake = FakeEngineAPI()
    fake.unreachable = True
    at = new_app(fake).run()
    log_in(at, "alice")
    assert not at.exception
    assert shown(at, "Moteur injoignable")


def test_logout_revokes_and_returns_to_login() -> None:
    fake = FakeEngineAPI()
    at = logged_in(fake)
    button(at.sidebar, "Se déconnecter").click()
    at.run()
    assert fake.called("logout")
    assert labels(at.text_input) == ["Identifiant", "Mot de passe"]
    assert shown(at, "Vous êtes déconnecté")
    assert "engine_api" not in at.session_state and "user" not in at.session_state


def test_a_401_goes_back_to_login_with_session_expired() -> None:
    fake = FakeEngineAPI()
    at = logged_in(fake)
    fake.expired = True
    at.run()
    assert not at.exception
    assert labels(at.text_input) == ["Identifiant", "Mot de passe"]
    assert shown(at, "Session expirée")


def test_a_401_while_asking_goes_back_to_login() -> None:
    fake = FakeEngineAPI()
    at = logged_in(fake)
    fake.expired = True
    at.chat_input[0].set_value("Une question").run()
    assert shown(at, "Session expirée")
    assert not at.chat_input


@pytest.mark.parametrize("name", ["alice", "audrey"])
def test_analysts_and_auditors_get_no_admin_page(name: str) -> None:
    at = logged_in(FakeEngineAPI(), name)
    for page in ("admin_upload.py", "admin_jobs.py", "admin_documents.py", "admin_users.py"):
        with pytest.raises(ValueError, match="navigation page"):
            at.switch_page(f"{SCREENS}/{page}")


def test_admins_get_the_admin_pages() -> None:
    fake = FakeEngineAPI()
    at = logged_in(fake, "admin")
    at.switch_page(f"{SCREENS}/admin_users.py").run()
    assert not at.exception
    assert shown(at, "Utilisateurs")
    assert fake.called("users")


def test_language_switch_to_english() -> None:
    at = new_app(FakeEngineAPI()).run()
    at.sidebar.radio[0].set_value("en").run()
    assert labels(at.text_input) == ["User name", "Password"]
    assert "Log in" in labels(at.button)


def test_the_real_client_shows_an_unreachable_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    from tests.ui.apptest_helpers import MAIN

    monkeypatch.setenv("VIGIE_ENGINE_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    at = AppTest.from_file(MAIN, default_timeout=20).run()
    log_in(at, "alice")
    assert not at.exception
    assert shown(at, "Moteur injoignable")


def test_a_401_inside_the_source_dialog_goes_back_to_login() -> None:
    fake = FakeEngineAPI()
    at = logged_in(fake)
    at.chat_input[0].set_value("Combien de frégates ?").run()
    button(at, "Voir dans le document").click()
    at.run()
    fake.expired = True
    button(at, "Récupérer le fichier original").click()
    at.run()
    assert not at.exception
    assert shown(at, "Session expirée")
    assert labels(at.text_input) == ["Identifiant", "Mot de passe"]
