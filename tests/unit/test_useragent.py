"""Which User-Agents MusicBrainz treats as anonymous (PROVIDERS.md section 2)."""

from __future__ import annotations

import pytest

from scrapy_apigw import __version__
from scrapy_apigw.core.useragent import user_agent_problem
from scrapy_apigw.settings import SANDBOX_USER_AGENT


@pytest.mark.parametrize(
    ("agent", "problem"),
    [
        ("MyApp/1.2.0 ( contact@example.com )", None),  # MusicBrainz's own example
        ("MyAwesomeTagger/1.2.0 ( http://myawesometagger.example.com )", None),
        ("beets/2.0 (+https://beets.io)", None),
        (SANDBOX_USER_AGENT, None),
        (None, "missing"),
        ("", "missing"),
        ("   ", "missing"),
        ("python-requests/2.32.3", "generic"),
        ("Python-urllib/3.12", "generic"),
        ("Scrapy/2.19.0 (+https://scrapy.org)", "generic"),  # a URL, but Scrapy's own
        ("curl/8.5.0", "generic"),
        ("Mozilla/5.0 (X11; Linux x86_64)", "generic"),
        (f"scrapy-apigw/{__version__}", "no contact"),  # our APIGW_USER_AGENT default
        ("MyApp/1.0", "no contact"),
        ("MyApp/1.0 ( nobody )", "no contact"),
    ],
)
def test_user_agent_problem(agent: str | None, problem: str | None) -> None:
    assert user_agent_problem(agent) == problem
