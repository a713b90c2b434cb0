"""Optional QA accuracy: an LLM judges answers with the LoCoMo "J" protocol (generous
CORRECT/WRONG) or LongMemEval's per-type prompts. Used only when an endpoint is configured."""

from __future__ import annotations

import os

from engram.bench.datasets import Question
from engram.errors import EngramError
from engram.llm.base import LLM

LOCOMO_JUDGE = """Your task is to label an answer to a question as 'CORRECT' or 'WRONG'. You are given \
(1) a question posed by one user to another user, (2) a gold (ground truth) answer, (3) a generated answer. \
The question asks about something one user should know about the other based on their prior conversations. \
Be generous with your grading: as long as the generated answer touches on the same topic as the gold answer, \
it is CORRECT. For time questions the gold answer is a specific date, month or year; the generated answer \
may be longer or use relative references ("last Tuesday"), and counts as CORRECT if it refers to the same \
date or period, whatever the format.

Question: {question}
Gold answer: {answer}
Generated answer: {response}

Reply with one word: CORRECT or WRONG."""

LONGMEMEVAL_DEFAULT = """I will give you a question, a correct answer, and a response from a model. Please \
answer yes if the response contains the correct answer. Otherwise, answer no. If the response is equivalent \
to the correct answer or contains all the intermediate steps to get the correct answer, you should also \
answer yes. If the response only contains a subset of the information required by the answer, answer no.{extra}

Question: {question}

Correct Answer: {answer}

Model Response: {response}

Is the model response correct? Answer yes or no only."""

LONGMEMEVAL_EXTRA = {
    "temporal-reasoning": " In addition, do not penalize off-by-one errors for the number of days. If the "
    "question asks for the number of days/weeks/months, etc., and the model makes off-by-one errors (e.g., "
    "predicting 19 days when the answer is 18), the model's response is still correct.",
    "knowledge-update": " If the response contains some previous information along with an updated answer, "
    "the response should be considered as correct as long as the updated answer is the required answer.",
}

LONGMEMEVAL_PREFERENCE = """I will give you a question, a rubric for desired personalized response, and a \
response from a model. Please answer yes if the response satisfies the desired response. Otherwise, answer \
no. The model does not need to reflect all the points in the rubric. The response is correct as long as it \
recalls and utilizes the user's personal information correctly.

Question: {question}

Rubric: {answer}

Model Response: {response}

Is the model response correct? Answer yes or no only."""

ABSTENTION_JUDGE = """I will give you an unanswerable question, an explanation, and a response from a model. \
Please answer yes if the model correctly identifies the question as unanswerable. The model could say that \
the information is incomplete, or some other information is given but the asked information is not.

Question: {question}

Explanation: {answer}

Model Response: {response}

Does the model correctly identify the question as unanswerable? Answer yes or no only."""

LOCOMO_ABSTENTION_EXPLANATION = "The conversation never mentions this."


class QAJudge:
    """Labels one answer correct or not with an LLM, using the prompt of the benchmark."""

    def __init__(self, llm: LLM, benchmark: str) -> None:
        self.llm = llm
        self.benchmark = benchmark

    def prompt(self, question: Question, response: str) -> str:
        """The judge prompt for this question type."""
        if question.should_abstain:
            explanation = LOCOMO_ABSTENTION_EXPLANATION if self.benchmark == "locomo" else question.answer
            return ABSTENTION_JUDGE.format(question=question.question, answer=explanation, response=response)
        if self.benchmark == "locomo":
            return LOCOMO_JUDGE.format(question=question.question, answer=question.answer, response=response)
        if question.category == "single-session-preference":
            return LONGMEMEVAL_PREFERENCE.format(question=question.question, answer=question.answer,
                                                 response=response)
        return LONGMEMEVAL_DEFAULT.format(extra=LONGMEMEVAL_EXTRA.get(question.category, ""),
                                          question=question.question, answer=question.answer, response=response)

    def judge(self, question: Question, response: str) -> bool:
        """True when the LLM labels ``response`` correct (a failed judge call counts as wrong)."""
        if not response.strip():
            return False
        try:
            reply = self.llm.complete_text([{"role": "user", "content": self.prompt(question, response)}],
                                           name="bench_judge")
        except EngramError:
            return False
        return parse_verdict(reply.text)


def parse_verdict(text: str) -> bool:
    """Read a judge reply: ``CORRECT``/``yes`` is True, ``WRONG``/``no`` or anything else False."""
    words = text.strip().lower().replace("*", "").split()
    first = words[0].strip(".,:;!\"'") if words else ""
    return first in {"correct", "yes"}


def judge_from_environment(benchmark: str) -> tuple[QAJudge | None, str]:
    """A judge on ``ENGRAM_LLM_BASE_URL`` (model ``ENGRAM_LLM_MODEL``), or None and the reason."""
    base_url = os.environ.get("ENGRAM_LLM_BASE_URL")
    if not base_url:
        return None, "QA skipped: ENGRAM_LLM_BASE_URL is not set"
    model = os.environ.get("ENGRAM_LLM_MODEL")
    if not model:
        return None, "QA skipped: ENGRAM_LLM_MODEL is not set"
    from engram.llm.openai_compat import OpenAICompatLLM

    llm = OpenAICompatLLM(base_url=base_url, model=model, api_key=os.environ.get("ENGRAM_LLM_API_KEY"))
    return QAJudge(llm, benchmark), f"QA judged by {model} at {base_url}"
