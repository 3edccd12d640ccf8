"""MLflow's own judges, graded by an evalserve server (seed 004 without vLLM).

    evalserve serve &                          # or any evalserve behind --base-url
    python examples/mlflow_judge.py --base-url http://localhost:8000
    mlflow ui --backend-store-uri sqlite:///mlflow.db

Runs both MLflow judge APIs over `examples/evaluation_data.csv` (`inputs,predictions`):

- `genai`: `mlflow.genai.judges.make_judge` + `mlflow.genai.evaluate` (MLflow 3);
- `legacy`: `mlflow.metrics.genai.make_genai_metric` + `mlflow.evaluate` (the seed's API,
  deprecated by MLflow but still shipped), logged with `experiment_type=llm_judge_evaluation`.

and prints each row's value and rationale.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import httpx

from evalserve.client.http import auth_headers

HERE = Path(__file__).resolve().parent

INSTRUCTIONS = (
    "Rate how well the answer in {{ outputs }} answers the question in {{ inputs }} on a "
    "scale from 1 (wrong or off-topic) to 5 (correct, complete and concise). Give the score "
    "as `result` and one sentence explaining it as `rationale`."
)
DEFINITION = "Accuracy: whether the answer is factually correct and answers the question."
GRADING_PROMPT = (
    "Score 1: the answer is wrong or unrelated to the question.\n"
    "Score 3: the answer is partly correct or incomplete.\n"
    "Score 5: the answer is correct, complete and concise."
)


def served_model(base_url: str, api_key: str | None) -> str:
    """The first model listed by the server's `/v1/models`."""
    url = base_url.rstrip("/").removesuffix("/v1") + "/v1/models"
    return httpx.get(url, headers=auth_headers(api_key), timeout=30).json()["data"][0]["id"]


def run_genai(df, base_url: str, model: str, api_key: str | None) -> list[tuple]:
    """`make_judge` + `mlflow.genai.evaluate`: one Feedback (value, rationale) per row."""
    import mlflow

    from evalserve.tracking.judges import make_evalserve_judge

    judge = make_evalserve_judge("answer_quality", INSTRUCTIONS, base_url=base_url,
                                 model=model, api_key=api_key, scale=(1, 5))
    data = [{"inputs": {"question": q}, "outputs": a}
            for q, a in zip(df["inputs"], df["predictions"])]
    result = mlflow.genai.evaluate(data=data, scorers=[judge])
    rows = []
    for _, row in result.result_df.iterrows():
        value = row.get("answer_quality/value")
        rationale = None
        for assessment in row.get("assessments") or []:
            if assessment.get("assessment_name") == "answer_quality":
                rationale = assessment.get("rationale")
        rows.append((row["request"], value, rationale))
    return rows


def run_legacy(df, base_url: str, model: str, api_key: str | None) -> list[tuple]:
    """`make_genai_metric` + `mlflow.evaluate` as in seed 004: score and justification per row."""
    import mlflow

    from evalserve.tracking.judges import make_evalserve_genai_metric

    metric = make_evalserve_genai_metric("llm_judge_accuracy", DEFINITION, GRADING_PROMPT,
                                         base_url=base_url, model=model, api_key=api_key)
    with mlflow.start_run(run_name="llm-judge-legacy",
                          tags={"experiment_type": "llm_judge_evaluation"}):
        mlflow.log_param("judge_model", model)
        result = mlflow.evaluate(data=df, predictions="predictions", extra_metrics=[metric],
                                 evaluators="default")
    table = result.tables["eval_results_table"]
    return [(r["inputs"], r["llm_judge_accuracy/v1/score"],
             r["llm_judge_accuracy/v1/justification"]) for _, r in table.iterrows()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://localhost:8000",
                        help="evalserve server (with or without /v1)")
    parser.add_argument("--model", help="model id (default: the first of /v1/models)")
    parser.add_argument("--api-key", default=os.environ.get("EVALSERVE_API_KEY"),
                        help="bearer token when the server sets API_TOKEN")
    parser.add_argument("--data", type=Path, default=HERE / "evaluation_data.csv")
    parser.add_argument("--limit", type=int, help="grade only the first N rows")
    parser.add_argument("--api", choices=["genai", "legacy", "both"], default="both")
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI",
                                                                 "sqlite:///mlflow.db"))
    parser.add_argument("--experiment", default="evalserve-mlflow-judges")
    args = parser.parse_args(argv)

    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_experiment(args.experiment)
    df = pd.read_csv(args.data)
    if args.limit:
        df = df.head(args.limit)
    model = args.model or served_model(args.base_url, args.api_key)
    apis = ["genai", "legacy"] if args.api == "both" else [args.api]
    for api in apis:
        rows = (run_genai if api == "genai" else run_legacy)(df, args.base_url, model,
                                                               args.api_key)
        print(f"== {api}")
        for request, value, rationale in rows:
            print(f"{value!s:>4}  {str(request)[:50]:<50}  {rationale}")


if __name__ == "__main__":
    main()
