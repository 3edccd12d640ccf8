"""deploy/README.md names only variables that exist: evalserve settings, the libraries'
variables, or what the compose file reads from the shell."""

from __future__ import annotations

import re

from tests.deploy.variables import DEPLOY, known_variables

#: Upper-case words in backticks that are not variables.
NOT_VARIABLES = {"HEALTHCHECK"}  # the Dockerfile instruction


def test_every_variable_the_deploy_readme_names_is_read_by_something() -> None:
    readme = (DEPLOY / "README.md").read_text()
    named = set(re.findall(r"`([A-Z][A-Z0-9_]{2,})`", readme)) - NOT_VARIABLES
    compose = "".join(p.read_text() for p in DEPLOY.glob("docker-compose*.yml"))
    from_shell = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", compose))
    assert named - known_variables() - from_shell == set()
    # and every variable compose reads from the shell is explained there
    assert from_shell <= named
