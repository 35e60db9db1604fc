"""The settings model: every knob cortan has, its type, range and default.

Sources, lowest priority first: defaults, the TOML config file, ``CORTAN_*``
variables (``__`` between nested keys, e.g. ``CORTAN_TIMEOUTS__CONNECT``), then
command-line flags. The ecosystem's own variables (``OLLAMA_HOST``,
``OPENAI_BASE_URL``, ``OPENAI_API_KEY``) fill the built-in providers' defaults, so
a machine already set up for ``ollama`` or the OpenAI SDK works unchanged.

docs/configuration.md lists every setting; keep the two in step.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
from contextvars import ContextVar
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from cortan.core.errors import ConfigError
from cortan.core.text import find_lone_surrogate

ProviderKind = Literal["ollama", "openai"]
#: The providers that exist without any config: each is named for its kind.
BUILTIN_KINDS = ("ollama", "openai")
DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"
DEFAULT_OPENAI_URL = "https://api.openai.com/v1"
#: Requests one host of each kind is sent at once unless ``parallel`` says otherwise:
#: Ollama answers one at a time unless its server is told otherwise (OLLAMA_NUM_PARALLEL);
#: an OpenAI-compatible API takes several.
DEFAULT_PARALLEL: dict[str, int] = {"ollama": 1, "openai": 4}
MAX_PARALLEL = 1024


def normalize_ollama_host(value: str) -> str:
    """Accept OLLAMA_HOST's spellings (``0.0.0.0``, ``host:port``, ``:11434``, URLs)."""
    value = value.strip().rstrip("/")
    if "://" not in value:
        value = "http://" + value
    parts = urlsplit(value)
    host = parts.hostname or "127.0.0.1"
    if host in ("0.0.0.0", "::"):  # a bind-all address: the server is on this machine
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    port = parts.port or (443 if parts.scheme == "https" else 11434)
    return f"{parts.scheme}://{host}:{port}{parts.path}"


def get_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a provider's base URL, or None when it can."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port out of range or not a number
    except ValueError as exc:
        return str(exc)
    if parts.scheme not in ("http", "https"):
        return "it must start with http:// or https://"
    if not parts.hostname:
        return "it names no host"
    return None


def get_base_url_problem(kind: str, url: str) -> str | None:
    """Why ``url`` cannot be the base URL of a provider of this kind, or None."""
    if kind != "ollama":
        return get_url_problem(url.strip())
    try:
        return get_url_problem(normalize_ollama_host(url))
    except ValueError as exc:
        return str(exc)


@functools.lru_cache(maxsize=256)
def is_loopback_url(url: str) -> bool:
    """True when ``url`` points at this machine (localhost or a loopback address).

    Cached: the secret guard asks it of every request's provider (``is_local``), and
    the gateway parsed the same URL and address for each of its requests.
    """
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RateLimit(BaseModel):
    """Client-side limits, ``[providers.NAME.rate_limit]`` (docs/configuration.md, "Rate limits").

    Token buckets shared by every request of the process: ``per = "provider"`` holds
    all hosts of the provider to the limits together (an API key's quota), ``"host"``
    holds each host to them on its own (servers you run yourself).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests_per_minute: float | None = Field(default=None, gt=0, le=1e9)
    tokens_per_minute: float | None = Field(default=None, gt=0, le=1e12)
    per: Literal["provider", "host"] = "provider"


class ProviderConfig(BaseModel):
    """One named backend: ``[providers.NAME]`` in the config file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ProviderKind
    hosts: list[str] = Field(default_factory=list)
    base_url: str | None = None
    api_key_env: str | None = None
    api_key_cmd: str | None = None
    local: bool | None = None
    # Requests sent to one host at once: a number for every host, or one per host URL.
    parallel: (
        Annotated[int, Field(ge=1, le=MAX_PARALLEL)]
        | dict[str, Annotated[int, Field(ge=1, le=MAX_PARALLEL)]]
        | None
    ) = None
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    # The body field for the answer's length (openai kind): None lets cortan choose
    # (max_completion_tokens for api.openai.com, max_tokens elsewhere) and learn from
    # a 400 that refuses it; a name pins it (cortan.providers.openai).
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] | None = None

    @field_validator("hosts")
    @classmethod
    def _check_hosts(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if not host.strip():
                raise ValueError("a host is empty")
        return hosts

    @model_validator(mode="after")
    def _check_urls(self) -> ProviderConfig:
        # Checked here so that a bad URL is a one-sentence config error, not a crash
        # when the client library parses it (the ollama module even does so on import).
        for url in [*self.hosts, *([self.base_url] if self.base_url else [])]:
            problem = get_base_url_problem(self.kind, url)
            if problem:
                raise ValueError(f"{url!r} is not a usable URL: {problem}")
        return self

    @model_validator(mode="after")
    def _check_length_field(self) -> ProviderConfig:
        if self.max_tokens_field is not None and self.kind != "openai":
            raise ValueError("max_tokens_field is for OpenAI-compatible providers (kind openai)")
        return self

    @model_validator(mode="after")
    def _check_parallel(self) -> ProviderConfig:
        if isinstance(self.parallel, dict):
            urls = self.get_urls()
            for given in self.parallel:
                if self._normalize(given) not in urls:
                    raise ValueError(f"parallel names {given!r}, which is not one of its hosts")
        return self

    def get_urls(self) -> list[str]:
        """Base URLs to try, each normalised for this kind of server."""
        urls = list(self.hosts) or ([self.base_url] if self.base_url else [])
        if self.kind == "ollama":
            return [normalize_ollama_host(u) for u in urls] or [DEFAULT_OLLAMA_HOST]
        return [u.strip().rstrip("/") for u in urls] or [DEFAULT_OPENAI_URL]

    def get_parallel(self, url: str) -> int:
        """How many requests the host at ``url`` (as :meth:`get_urls` gives it) is sent at once."""
        default = DEFAULT_PARALLEL[self.kind]
        if isinstance(self.parallel, dict):
            for given, parallel in self.parallel.items():
                if self._normalize(given) == url:
                    return parallel
            return default
        return default if self.parallel is None else self.parallel

    def _normalize(self, url: str) -> str:
        return normalize_ollama_host(url) if self.kind == "ollama" else url.strip().rstrip("/")

    def is_local(self) -> bool:
        """Local providers are exempt from the secret guard; config may say otherwise."""
        if self.local is not None:
            return self.local
        return all(is_loopback_url(url) for url in self.get_urls())


def default_providers() -> dict[str, ProviderConfig]:
    """The two providers that exist without any config, shaped by the environment."""
    ollama_host = os.environ.get("OLLAMA_HOST")
    openai_url = os.environ.get("OPENAI_BASE_URL")
    for name, value, kind in (
        ("OLLAMA_HOST", ollama_host, "ollama"),
        ("OPENAI_BASE_URL", openai_url, "openai"),
    ):
        problem = get_base_url_problem(kind, value) if value else None
        if problem:  # raised as is: pydantic passes a ConfigError through untouched
            raise ConfigError(
                f"environment variable {name}: {value!r} is not a usable URL: {problem}"
            )
    return {
        "ollama": ProviderConfig(kind="ollama", hosts=[ollama_host] if ollama_host else []),
        "openai": ProviderConfig(
            kind="openai",
            base_url=openai_url or DEFAULT_OPENAI_URL,
            api_key_env="OPENAI_API_KEY",
        ),
    }


def _with_builtin_defaults(name: str, entry: Any) -> Any:
    """``[providers.ollama]`` or ``[providers.openai]`` as written, over the built-in's
    kind, URL and key variable; where to send (``hosts`` or ``base_url``) comes whole
    from one side, so a table naming its own hosts is not also sent to OLLAMA_HOST."""
    if not isinstance(entry, dict) or entry.get("kind", name) != name:
        return entry
    builtin = default_providers()[name]
    defaults: dict[str, Any] = {"kind": name, "api_key_env": builtin.api_key_env}
    if "hosts" not in entry and "base_url" not in entry:
        defaults |= {"hosts": builtin.hosts, "base_url": builtin.base_url}
    return {**defaults, **entry}


class Timeouts(BaseModel):
    """Seconds. A local model loading into memory can take minutes before its first token."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connect: float = Field(default=5.0, gt=0, le=3600)
    first_token: float = Field(default=300.0, gt=0, le=86400)
    total: float = Field(default=1800.0, gt=0, le=86400)


class Retry(BaseModel):
    """Trying a model again after a failure before its first token (docs/providers.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: int = Field(default=3, ge=1, le=20)  # tries in all; 1 turns retries off
    base_delay: float = Field(default=0.5, ge=0, le=600)
    max_delay: float = Field(default=8.0, ge=0, le=3600)
    deadline: float = Field(default=60.0, ge=0, le=86400)  # no retry starts after this


class Breaker(BaseModel):
    """The circuit breaker each host has: skip a host that keeps failing for a while."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    failures: int = Field(default=3, ge=1, le=1000)  # in a row, to open the circuit
    cooldown: float = Field(default=30.0, ge=0, le=86400)  # open this long, then one trial


class ContextSettings(BaseModel):
    """Token budgets: ``[context]`` (docs/configuration.md, "Context")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: int = Field(default=8192, ge=512, le=100_000_000)  # when nothing else says
    windows: dict[str, Annotated[int, Field(ge=512, le=100_000_000)]] = Field(
        default_factory=dict
    )  # per model name; wins over what the server says
    answer_reserve: int = Field(default=1024, ge=0, le=1_000_000)  # tokens kept for the answer
    ollama_num_ctx_min: int = Field(default=4096, ge=512, le=100_000_000)
    ollama_num_ctx_max: int = Field(default=32768, ge=512, le=100_000_000)  # memory grows with it


class CacheSettings(BaseModel):
    """The response cache: ``[cache]`` (docs/configuration.md, "Response cache")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Names (aliases, provider:model, bare names) whose answers are cached without --cache.
    models: list[str] = Field(default_factory=list)
    sampled: bool = False  # also cache answers sampled at a temperature above zero
    max_bytes: int = Field(default=64 << 20, ge=0, le=1 << 40)  # oldest-used go first past it
    max_age_days: float = Field(default=30.0, gt=0, le=36500)


class BatchSettings(BaseModel):
    """``cortan batch``: ``[batch]`` (docs/batch.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Seconds between plain progress lines; below 0.1 the job's clock loop spun a core.
    progress_interval: float = Field(default=10.0, ge=0.1, le=86400)
    max_failures: int = Field(default=10, ge=0, le=1 << 31)  # in a row stop the job; 0: never


class RoleConfig(BaseModel):
    """A named role, ``[roles.NAME]``: a system prompt, optionally a model and a temperature."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    system: str | None = None  # may be left out only to change a built-in role's model
    model: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)


DEFAULT_SERVE_PORT = 11435  # beside Ollama's 11434: one more local model server


class ServeSettings(BaseModel):
    """The gateway, ``[serve]`` (docs/serve.md): where it listens and what it allows.

    The token itself is never here: it lives in the OS keyring (made on the first
    run) or ``CORTAN_SERVE_TOKEN``; ``token_cmd`` names a command that prints it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_SERVE_PORT, ge=0, le=65535)
    token_cmd: str | None = None  # prints the token (a password manager), instead of the keyring
    allowed_hosts: list[str] = Field(default_factory=list)  # Host names beyond loopback's
    cors_origins: list[str] = Field(default_factory=list)  # exact origins; never "*"
    max_body_bytes: int = Field(default=8 << 20, ge=1024, le=1 << 30)
    max_messages: int = Field(default=1000, ge=1, le=1_000_000)
    max_images: int = Field(default=100, ge=0, le=1_000_000)  # in one request, all turns
    max_connections: int = Field(default=16_384, ge=1, le=1_000_000)  # requests and sockets open
    max_streams: int = Field(default=512, ge=1, le=100_000)  # answers in progress, in all
    streams_per_host: int = Field(default=16, ge=1, le=10_000)  # answered at once by one host
    queue_per_host: int = Field(default=64, ge=0, le=100_000)  # waiting for one host, at most
    host_streams: dict[str, Annotated[int, Field(ge=1, le=10_000)]] = Field(
        default_factory=dict
    )  # streams_per_host for one provider, by name
    chats_per_socket: int = Field(default=8, ge=1, le=1000)  # a WebSocket's chats at once
    drain_timeout: float = Field(default=10.0, ge=0, le=3600)  # seconds, on Ctrl-C or SIGTERM
    body_timeout: float = Field(default=30.0, gt=0, le=3600)  # seconds to send a request body
    keep_alive: float = Field(default=120.0, gt=0, le=3600)  # seconds an idle connection stays
    write_timeout: float = Field(default=30.0, gt=0, le=3600)  # seconds a client may read nothing

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if "*" in origin:
                raise ValueError("a wildcard origin lets any web page use the gateway: name each")
            if get_url_problem(origin) is not None:
                raise ValueError(f"{origin!r} is not an origin such as http://localhost:3000")
        return [origin.rstrip("/") for origin in origins]


class ApprovalSettings(BaseModel):
    """``[approval]``: what may run without asking, and what never may (docs/commands.md).

    Patterns are shell-style globs (``*``, ``?``, ``[...]``) over the whole command
    line or the tool's name. An allowlist pattern never matches a command holding a
    shell operator (``;``, ``|``, ``&``, ``>``, ``$``, a backquote...), so ``ls *``
    cannot let ``ls; rm -rf ~`` through. The built-in hard denials come before all of
    these and cannot be allowed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow_commands: list[str] = Field(default_factory=list)  # run without asking, even unattended
    deny_commands: list[str] = Field(default_factory=list)  # never run, whatever is answered
    allow_tools: list[str] = Field(default_factory=list)  # tool names called without asking
    deny_tools: list[str] = Field(default_factory=list)  # tool names never called


class CommandSettings(BaseModel):
    """``[commands]``: command mode (``cortan cmd``, ``/run``; docs/commands.md).

    ``history``: append each command run to the shell's own history file, in that
    shell's format (bash, zsh, fish), so it comes back with the up arrow.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    history: bool = False


class ToolSettings(BaseModel):
    """``[tools]``: the model's tools (docs/tools.md): off unless turned on here or by
    ``--tools``, and bounded however long a model keeps calling them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False  # offer the tools to the model in `ask` and the REPL
    builtin: list[str] = Field(
        default_factory=lambda: ["read_file", "list_dir", "search_text", "run_command"]
    )  # the built-in tools offered when tools are on
    max_rounds: int = Field(default=8, ge=1, le=100)  # times the model is asked again
    max_seconds: float = Field(default=300.0, gt=0, le=86400)  # the whole loop, tools and model
    max_result_bytes: int = Field(default=16_384, ge=256, le=1 << 24)  # one result, to the model
    command_timeout: float = Field(default=30.0, gt=0, le=3600)  # one run_command, seconds
    search_max_files: int = Field(default=5000, ge=1, le=1_000_000)  # files search_text reads


class McpServer(BaseModel):
    """``[mcp.servers.NAME]``: a stdio server (``command``) or a streamable-HTTP one
    (``url``), started the first time one of its tools is needed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    url: str | None = None
    start_timeout: float = Field(default=15.0, gt=0, le=600)  # seconds to start and list tools
    call_timeout: float = Field(default=60.0, gt=0, le=3600)  # seconds for one call

    @model_validator(mode="after")
    def _one_way(self) -> McpServer:
        if (self.command is None) == (self.url is None):
            raise ValueError("an MCP server has either a command (stdio) or a url (HTTP)")
        if self.url is not None and get_url_problem(self.url) is not None:
            raise ValueError(f"{self.url!r} is not a URL such as http://127.0.0.1:8000/mcp")
        return self


class McpSettings(BaseModel):
    """``[mcp]``: the MCP servers whose tools the model may call."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    servers: dict[str, McpServer] = Field(default_factory=dict)

    @field_validator("servers")
    @classmethod
    def _names(cls, servers: dict[str, McpServer]) -> dict[str, McpServer]:
        for name in servers:
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", name):
                raise ValueError(f"MCP server name {name!r}: letters, digits, - and _ only")
        return servers


ThinkLevel = Literal["low", "medium", "high"]


#: The error type of a setting holding a lone surrogate; its ``inside`` says where below
#: the field (config/load.py names the key, and the variable it came from).
LONE_SURROGATE = "lone_surrogate"


class Settings(BaseSettings):
    """All of cortan's configuration, validated once and passed down as plain data."""

    model_config = SettingsConfigDict(
        env_prefix="CORTAN_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    default_model: str = Field(default="ollama:llama3.2", min_length=1)
    system: str | None = None
    instruction_position: Literal["before", "after"] = "after"
    max_input_bytes: int = Field(default=1_048_576, gt=0, le=1 << 31)
    max_output_bytes: int = Field(default=4 << 20, gt=0, le=1 << 31)  # one answer, in memory
    # What a server may send back, counted once decompressed (docs/security.md): the whole
    # body of a streamed answer (None: 16 × max_output_bytes), and any other body (a model
    # list, a model's details, an error). One line of an answer stays under max_output_bytes.
    max_response_bytes: int | None = Field(default=None, gt=0, le=1 << 40)
    max_listing_bytes: int = Field(default=8 << 20, gt=0, le=1 << 31)
    max_image_bytes: int = Field(default=20 << 20, gt=0, le=1 << 31)  # each attached image
    stdin_timeout: float = Field(default=10.0, ge=0, le=86400)
    color: bool = True
    code_theme: str = "monokai"
    log: bool = True  # store every exchange in the session store (docs/sessions.md)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    providers: dict[str, ProviderConfig] = Field(default_factory=default_providers)
    aliases: dict[str, str] = Field(default_factory=dict)
    fallback: list[str] = Field(default_factory=list)
    fallbacks: dict[str, list[str]] = Field(default_factory=dict)  # per alias or model name
    retry: Retry = Field(default_factory=Retry)
    breaker: Breaker = Field(default_factory=Breaker)
    context: ContextSettings = Field(default_factory=ContextSettings)
    roles: dict[str, RoleConfig] = Field(default_factory=dict)
    # Thinking models (docs/models.md): per alias or model name, on, off or a level;
    # unnamed models keep the server's default. Showing it is apart from asking for it.
    think: dict[str, bool | ThinkLevel] = Field(default_factory=dict)
    show_thinking: bool = True
    # What a model can do, where its server does not say (OpenAI-compatible servers):
    # per alias or model name, e.g. {"my-vision-model": ["completion", "vision"]}.
    capabilities: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    batch: BatchSettings = Field(default_factory=BatchSettings)
    approval: ApprovalSettings = Field(default_factory=ApprovalSettings)
    commands: CommandSettings = Field(default_factory=CommandSettings)
    tools: ToolSettings = Field(default_factory=ToolSettings)
    mcp: McpSettings = Field(default_factory=McpSettings)

    @field_validator("*", mode="before")
    @classmethod
    def _valid_unicode(cls, value: Any) -> Any:
        # A CORTAN_* variable's JSON may escape a lone surrogate ("\udc01"): as an alias
        # it reached the store and failed each request on it as an "internal error".
        if (found := find_lone_surrogate(value)) is not None:
            parts, in_key = found
            raise PydanticCustomError(
                LONE_SURROGATE, "{what} is not valid Unicode text (a lone surrogate)",
                {"what": "a name" if in_key else "the value", "inside": list(parts)},
            )  # fmt: skip
        return value

    @model_validator(mode="before")
    @classmethod
    def _builtin_kinds(cls, data: Any) -> Any:
        # `[providers.ollama]` (or CORTAN_PROVIDERS__OLLAMA__HOSTS) changes the built-in
        # provider: its kind is its name, so nobody has to say `kind = "ollama"` again,
        # and what it leaves unsaid keeps the built-in's value: a table that only sets
        # `rate_limit` must not drop OLLAMA_HOST, OPENAI_BASE_URL or OPENAI_API_KEY.
        providers = data.get("providers") if isinstance(data, dict) else None
        if not isinstance(providers, dict):
            return data
        filled = {
            name: _with_builtin_defaults(name, entry) if name in BUILTIN_KINDS else entry
            for name, entry in providers.items()
        }
        return {**data, "providers": filled}

    @model_validator(mode="after")
    def _keep_builtin_providers(self) -> Settings:
        # A config that adds [providers.work] must not make `ollama` and `openai` vanish.
        builtins = default_providers()
        missing = {k: v for k, v in builtins.items() if k not in self.providers}
        if missing:
            object.__setattr__(self, "providers", {**missing, **self.providers})
        for name in self.providers:
            if not name or ":" in name:
                raise ValueError(f"provider name {name!r} must be non-empty and have no ':'")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _DictSource(settings_cls, FILE_DATA.get()))


# The config file's parsed content for the load under way (see load.py): a context
# variable because pydantic-settings builds sources from the class, not the call.
FILE_DATA: ContextVar[dict[str, Any]] = ContextVar("cortan_file_data", default={})  # noqa: B039


class _DictSource(PydanticBaseSettingsSource):
    """Serves the already-parsed TOML file, so that parse errors are cortan's own."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)
