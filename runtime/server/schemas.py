"""Request and response bodies of the OpenAI-compatible API (the subset backplan serves).

Unknown top-level fields are ignored (clients send many); the ``backplan`` extension field is
strict. Parameters backplan cannot honour (``n`` > 1 or ``logprobs`` with ``stream``, ``echo``,
tools) are refused with a 400 rather than silently ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from runtime.samplers.strategies import STRATEGY_HELP, StrategyName
from runtime.verifiers.request_tests import MAX_TEST_CHARS, MAX_TESTS


class BackplanOptions(BaseModel):
    """Per-request extension: verifier and strategy override, and fixed-length generation."""

    model_config = ConfigDict(extra="forbid", strict=True)

    verifier: str | None = Field(
        None,
        max_length=256,
        description="none | syntax | latent=constant | a part of the server's --verifier, "
        "'+' to stack (model:NAME only if the server was started with it; examples and "
        "tests only if it runs with --allow-code-execution).",
    )
    tests: list[Annotated[str, Field(max_length=MAX_TEST_CHARS)]] | None = Field(
        None,
        max_length=MAX_TESTS,
        description="Python statements the tests verifier runs against each finished answer "
        "in the jail (e.g. 'assert add(1, 2) == 3').",
    )
    strategy: StrategyName | None = Field(None, description=STRATEGY_HELP)
    ignore_eos: bool = Field(False, description="Never stop at end of text (fixed length).")
    cache_prompt: bool = Field(
        True,
        description="Reuse the slot's KV cache for the prompt's common prefix (with the "
        "server's --prompt-cache). As in llama-server, logits of a prompt evaluated in parts "
        "are not bit-for-bit those of one evaluated whole, so a greedy answer may differ in "
        "rare cases; false evaluates the whole prompt (bit-reproducible).",
    )


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class _Common(BaseModel):
    # strict: "max_tokens": "8" or "stream": "yes" is a 400, not a guess
    model_config = ConfigDict(extra="ignore", strict=True)

    model: str | None = Field(None, max_length=1024, description="Served model id (optional).")
    max_tokens: int | None = Field(None, ge=1, description="Tokens to generate at most.")
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="0 = greedy.")
    top_p: float = Field(1.0, ge=0.0, le=1.0)
    top_k: int = Field(
        40, ge=0, le=1_000_000, description="Extension: keep the k best (0: all), as llama.cpp."
    )
    seed: int | None = Field(None, ge=-(2**63), le=2**64 - 1)
    stop: str | list[str] | None = Field(None, description="Up to 16 stop strings.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(
        1,
        ge=1,
        le=16,
        description="Choices to generate, each on its own slot, together (at most the "
        "server's --parallel; not with stream). With a seed, choice i draws with seed + i.",
    )
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0, description="Accepted, ignored.")
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0, description="Accepted, ignored.")
    user: str | None = Field(None, max_length=1024, description="Accepted, ignored.")
    backplan: BackplanOptions | None = None


class CompletionRequest(_Common):
    prompt: str | list[str] | list[int] | list[list[int]] = Field(
        ..., description="Text, or token ids; one prompt per request."
    )
    max_tokens: int | None = Field(
        None,
        ge=1,
        description="Tokens to generate at most (default 16, or the server's limit if lower).",
    )
    echo: bool = Field(False, description="Not supported (must be false).")
    logprobs: int | None = Field(
        None,
        ge=0,
        le=5,
        description="Return each output token's log-probability and this many alternatives "
        "(0-5; not with stream). Only committed tokens: a rolled-back token never appears.",
    )
    suffix: str | None = Field(
        None,
        description="Fill in the middle: the text after the gap (the prompt is the text before "
        "it); needs a model with FIM tokens. The syntax verifier then judges the whole file.",
    )


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None


class JsonSchemaSpec(BaseModel):
    """``response_format.json_schema``, as OpenAI takes it."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    name: str = Field("response", max_length=64)
    description: str | None = None
    schema_: dict[str, Any] | None = Field(
        None, alias="schema", description="The JSON schema the answer must follow."
    )
    strict: bool | None = Field(None, description="Accepted: the answer always follows it.")


class ResponseFormat(BaseModel):
    """``text`` (default), ``json_object`` (any JSON object) or ``json_schema``; the JSON
    forms constrain every token through llama.cpp's grammar sampler, backtracking included."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None


class ChatRequest(_Common):
    messages: list[ChatMessage] = Field(..., min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1, description="Alias of max_tokens.")
    logprobs: bool | None = Field(
        None,
        description="Return each output token's log-probability (not with stream). Only "
        "committed tokens: a rolled-back token never appears.",
    )
    top_logprobs: int | None = Field(
        None, ge=0, le=20, description="Alternatives per token (0-20; needs logprobs)."
    )
    tools: list[dict[str, object]] | None = Field(None, description="Not supported.")
    response_format: ResponseFormat | None = None


class InfillFile(BaseModel):
    """A context file an editor sends with an infill (llama-server's ``input_extra`` chunk)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    filename: str = Field("tmp", max_length=1024)
    text: str


class InfillRequest(BaseModel):
    """``POST /infill``, as llama-server takes it (the fields editor plugins send; others are
    ignored). Its defaults are llama-server's."""

    model_config = ConfigDict(extra="ignore", strict=True)

    input_prefix: str = Field(..., description="The code before the gap.")
    input_suffix: str = Field(..., description="The code after the gap (may be empty).")
    input_extra: list[InfillFile] = Field(
        default_factory=list, max_length=256, description="Other files, as context."
    )
    prompt: str = Field("", description="The start of the middle, already typed.")
    n_predict: int = Field(
        -1, ge=-1, description="Tokens to generate at most (-1: the server's limit)."
    )
    temperature: float = Field(0.8, ge=0.0, le=2.0, description="0 = greedy.")
    top_k: int = Field(40, ge=0, le=1_000_000)
    top_p: float = Field(0.95, ge=0.0, le=1.0)
    seed: int | None = Field(None, ge=-1, le=2**64 - 1, description="-1 or null: random.")
    stop: list[str] | None = Field(None, description="Up to 16 stop strings.")
    stream: bool = False
    cache_prompt: bool = Field(True, description="Reuse the slot's KV cache for the prompt.")
    backplan: BackplanOptions | None = None


# -- responses -------------------------------------------------------------------------------


class PromptTokensDetails(BaseModel):
    cached_tokens: int = Field(0, description="Prompt tokens reused from the slot's KV cache.")


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails = Field(default_factory=PromptTokensDetails)


class Backtrack(BaseModel):
    """What backtracking did for this request (cf. llama-server's draft_n / draft_n_accepted)."""

    strategy: str
    verifier: str
    rollbacks: int = Field(description="Rollback events.")
    rejected_tokens: int = Field(description="Tokens the verifier (or walk) rejected.")
    rolled_back_tokens: int
    verifier_calls: int
    generated_tokens: int = Field(description="Tokens sampled, rolled-back ones included.")
    main_forward_tokens: int = Field(description="Main-model positions evaluated, prompt too.")
    verifier_forward_tokens: int
    forward_per_token: float = Field(
        description="Forward evaluations (main + verifier, prompt excluded) per emitted token: "
        "the compute against plain decoding, which is 1.0."
    )
    decode_tokens_per_s: float
    queue_s: float = Field(description="Seconds waiting for a slot.")
    timed_out: bool = False
    code_runs: int = Field(0, description="Sandboxed checks of the answer (examples, tests).")
    code_cpu_s: float = Field(0.0, description="CPU seconds those checks used.")
    isolation: str | None = Field(None, description="jail (bubblewrap) when code ran.")


class CompletionLogprobs(BaseModel):
    """The legacy completions shape: parallel lists, one entry per output token."""

    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]] | None
    text_offset: list[int]


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: CompletionLogprobs | None = None
    finish_reason: str | None


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    backtrack: Backtrack | None = None
    backtrack_choices: list[Backtrack] | None = Field(
        None, description="With n > 1: each choice's backtracking (backtrack is the first's)."
    )


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int]


class ContentLogprob(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChatLogprobs(BaseModel):
    content: list[ContentLogprob]


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    logprobs: ChatLogprobs | None = None
    finish_reason: str | None


class ChatResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage | None = None
    backtrack: Backtrack | None = None
    backtrack_choices: list[Backtrack] | None = Field(
        None, description="With n > 1: each choice's backtracking (backtrack is the first's)."
    )


class InfillTimings(BaseModel):
    cache_n: int = Field(description="Prompt tokens reused from the slot's KV cache.")
    prompt_n: int = Field(description="Prompt tokens evaluated.")
    prompt_ms: float
    prompt_per_second: float
    predicted_n: int
    predicted_ms: float
    predicted_per_second: float


class InfillResponse(BaseModel):
    """llama-server's ``/infill`` answer (its ``/completion`` shape), plus ``backtrack``."""

    index: int = 0
    content: str
    id_slot: int
    stop: bool = True
    model: str
    tokens_predicted: int
    tokens_evaluated: int
    tokens_cached: int
    truncated: bool = Field(description="Part of the context did not fit the slot.")
    stop_type: Literal["eos", "limit", "word", "none"]
    stopping_word: str = ""
    has_new_line: bool
    timings: InfillTimings
    backtrack: Backtrack


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "backplan"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class TokenizeRequest(BaseModel):
    """``POST /tokenize``, as llama-server takes it."""

    model_config = ConfigDict(extra="ignore", strict=True)

    content: str = Field(..., description="Text to tokenise (special tokens are not parsed).")
    add_special: bool = Field(False, description="Prepend the model's BOS token if it has one.")
    with_pieces: bool = Field(False, description="Return each token's text beside its id.")


class TokenPiece(BaseModel):
    id: int
    piece: str


class TokenizeResponse(BaseModel):
    tokens: list[int] | list[TokenPiece]


class DetokenizeRequest(BaseModel):
    """``POST /detokenize``, as llama-server takes it."""

    model_config = ConfigDict(extra="ignore", strict=True)

    tokens: list[int] = Field(..., description="Token ids of this server's model.")


class DetokenizeResponse(BaseModel):
    content: str
