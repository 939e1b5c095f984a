"""The docs stay honest: every route and every setting is documented."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.routing import APIRoute

from vitascope.api.app import create_app
from vitascope.service import Vitascope
from vitascope.settings import Settings

DOCS = Path(__file__).parent.parent / "docs"


def test_every_route_is_in_api_md(tmp_path):
    app = create_app(Vitascope(Settings(home=tmp_path)), start_engine=False)
    text = (DOCS / "api.md").read_text()
    for route in app.routes:
        if isinstance(route, APIRoute) and route.include_in_schema:
            for method in route.methods:
                assert f"`{method} {route.path}`" in text, f"{method} {route.path} is not in docs/api.md"


def test_every_setting_is_in_configuration_md():
    text = (DOCS / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"VITASCOPE_{name.upper()}" in text, name


def test_readme_commands_match_ci():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text()
    test_cmd = re.search(r"```bash\n# run the tests\n(.+?)\n```", readme, re.S).group(1).strip()
    assert test_cmd[test_cmd.index("pip install torch"):] in ci  # CI runs what the README tells a developer to run
