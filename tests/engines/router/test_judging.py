"""What the jobs and the jury build on: a `Judge` naming a routed model is graded by that
model's endpoints, under the endpoint's upstream name, constraint and logprobs forwarded."""

from __future__ import annotations

from evalserve.judge import Judge, load_rubric
from tests.engines.router.fakes import Fleet, models

A, B = "http://a:8000/v1", "http://b:8000/v1"
TEACHER = load_rubric("teacher-eval-ca")
ITEM = {"id_alumno": "A001", "curso": "3r ESO", "consigna": "Explica la fotosíntesi",
        "respuesta": "Les plantes fan menjar amb la llum."}


async def test_judges_on_two_routed_models_reach_their_own_endpoints() -> None:
    fleet = Fleet(models(("judge-large", [{"url": A, "upstream_model": "org/Large-70B"}]),
                         ("judge-small", [B])))
    fleet[A].reply = '{"feedback": "Molt bé.", "nota": 5}'
    fleet[B].reply = '{"feedback": "Correcte.", "nota": 3}'
    assert {m.id for m in await fleet.router.models()} == {"judge-large", "judge-small"}
    large = await Judge(fleet.router, TEACHER, model="judge-large").grade(ITEM)
    small = await Judge(fleet.router, TEACHER, model="judge-small").grade(ITEM)
    default = await Judge(fleet.router, TEACHER).grade(ITEM)
    assert [g.record(TEACHER)["nota"] for g in (large, small, default)] == [5, 3, 5]
    assert [b["model"] for b in fleet[A].bodies] == ["org/Large-70B"] * 2
    assert [b["model"] for b in fleet[B].bodies] == ["judge-small"]
    sent = fleet[B].bodies[0]
    assert sent["response_format"]["type"] == "json_schema" and sent["logprobs"] is True
