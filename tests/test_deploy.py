"""The deployment files (deploy/) agree with the code: every file parses, the
three services run the one image built from deploy/Dockerfile with the command
line scripts/serve.sh uses, ports and probes are the ones the code serves,
every environment variable is one the code reads, every secret is in the
Secret, and what must be shared by replicas (lock store, signing key, salt) is.
Nothing here starts a container (deploy/README.md says what could not be run)."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from bot.config import ROOT
from bot.fingerprint import code_files

DEPLOY = ROOT / "deploy"
SITE = Path(yaml.__file__).resolve().parents[1]  # site-packages of the project's venv


def load(path: str):
    return yaml.safe_load((DEPLOY / path).read_text(encoding="utf-8"))


def load_all(path: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((DEPLOY / path).read_text(encoding="utf-8")) if d]


COMPOSE = load("compose.yaml")
HELM = load("helm/rasa-values.yaml")
K8S = {name: load_all(f"k8s/{name}.yaml") for name in ("web", "actions", "network-policy", "secret.example")}
ENDPOINTS = yaml.safe_load((ROOT / "endpoints.yml").read_text(encoding="utf-8"))
CREDENTIALS = yaml.safe_load((ROOT / "credentials.yml").read_text(encoding="utf-8"))
DOCKERFILE = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
NGINX = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
SERVE = (ROOT / "scripts" / "serve.sh").read_text(encoding="utf-8")
# The lock store several Rasa replicas share (scripts/env.sh maps LOCK_STORE_TYPE=redis to it).
ATOMIC_LOCK_STORE = "rasa_addons.lock_store.AtomicRedisLockStore"


def k8s(kind: str, name: str) -> dict:
    found = [d for docs in K8S.values() for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}"
    return found[0]


def container(deployment: str) -> dict:
    (only,) = k8s("Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    return only


def k8s_env(c: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def helm_env() -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in HELM["extraEnv"]}


# --- what the code reads --------------------------------------------------------------

CONFIG_NAMES = set(re.findall(r'_env\("([A-Z_0-9]+)"', (ROOT / "bot" / "config.py").read_text(encoding="utf-8")))
ENV_SH_NAMES = set(re.findall(r"^export ([A-Z_0-9]+)=", (ROOT / "scripts" / "env.sh").read_text(encoding="utf-8"),
                              re.M))
ENDPOINT_NAMES = set(re.findall(r"\$\{([A-Z_0-9]+)\}", (ROOT / "endpoints.yml").read_text(encoding="utf-8")))
# Variables read by the libraries the services run on, each with the file that reads it.
LIBRARY_NAMES = {
    "SANIC_HOST": "rasa_sdk/endpoint.py",                         # the action server's address
    "SANIC_WORKERS": "rasa/constants.py",                         # Rasa worker processes
    "SQL_POOL_SIZE": "rasa/core/constants.py",                    # Rasa's PostgreSQL connection pool
    "SQL_MAX_OVERFLOW": "rasa/core/constants.py",
    "RASA_TELEMETRY_ENABLED": "rasa/telemetry.py",
    "SQLALCHEMY_SILENCE_UBER_WARNING": "sqlalchemy/util/deprecations.py",
    "MPLCONFIGDIR": "matplotlib/__init__.py",
}
SANIC_CONFIG = "sanic/config.py"  # SANIC_<KEY>: Sanic's own config keys, from the environment


def test_the_names_the_code_reads_are_found():
    assert {"WEB_PORT", "RASA_URL", "SECRET_KEY", "REVIEW_SALT", "TRACKER_DB_URL", "RASA_TOKEN"} <= CONFIG_NAMES
    assert {"TRACKER_DB_DIALECT", "LOCK_STORE_TYPE", "ACTION_SERVER_URL"} <= ENDPOINT_NAMES
    for name, path in LIBRARY_NAMES.items():
        assert name in (SITE / path).read_text(encoding="utf-8"), f"{name} is no longer read by {path}"


def sanic_names() -> set[str]:
    text = (SITE / SANIC_CONFIG).read_text(encoding="utf-8")
    assert 'SANIC_PREFIX = "SANIC_"' in text
    return {"SANIC_" + key for key in re.findall(r'^\s+"([A-Z_]+)":', text, re.M)}


WEB_NAMES = CONFIG_NAMES | sanic_names()
ACTIONS_NAMES = CONFIG_NAMES | {"SANIC_HOST"}
RASA_NAMES = CONFIG_NAMES | ENDPOINT_NAMES | set(LIBRARY_NAMES) | ENV_SH_NAMES


# --- every file -------------------------------------------------------------------------

def test_every_deploy_file_parses():
    yaml_files = sorted(p.relative_to(DEPLOY).as_posix() for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))
    assert yaml_files == ["compose.yaml", "helm/rasa-values.yaml", "k8s/actions.yaml", "k8s/kustomization.yaml",
                          "k8s/network-policy.yaml", "k8s/secret.example.yaml", "k8s/web.yaml"]
    for path in yaml_files:
        assert load_all(path), path
    for docs in K8S.values():
        for doc in docs:
            assert {"apiVersion", "kind", "metadata"} <= set(doc), doc
    assert sorted(load("k8s/kustomization.yaml")["resources"]) == ["actions.yaml", "network-policy.yaml", "web.yaml"]
    assert NGINX.count("{") == NGINX.count("}")


# --- images -----------------------------------------------------------------------------

def test_the_three_services_run_the_one_image_built_from_the_dockerfile():
    services = COMPOSE["services"]
    images = {services[s]["image"] for s in ("web", "rasa", "actions")}
    assert len(images) == 1
    assert services["web"]["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    repo = HELM["image"]["repository"]
    assert container("ordos-web")["image"].split(":")[0] == repo
    assert container("ordos-actions")["image"].split(":")[0] == repo
    assert {i["name"] for i in load("k8s/kustomization.yaml")["images"]} == {repo}
    for third_party in ("nginx", "postgres", "redis"):
        assert re.fullmatch(r"[a-z]+:[0-9.]+-bookworm", services[third_party]["image"]), third_party


def test_the_image_holds_every_module_the_services_import_and_the_model():
    copied = set(re.findall(r"^COPY (?!--from)(?:\S+ )*?(\S+)/ \1/$", DOCKERFILE, re.M))
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    components = [c["name"].rsplit(".", 1)[0] for c in config["pipeline"] if c["name"].startswith("rasa_addons.")]
    entry_points = ["bot.web", "bot.web.chat", "actions.actions", "rasa_addons.channels", "rasa_addons.tracker_store",
                    "rasa_addons.serving", *components]
    needed = {p.relative_to(ROOT).parts[0] for m in entry_points for p in code_files(m)}
    assert needed <= copied, needed - copied
    assert {"knowledge", "data"} <= copied
    assert "COPY models/ordos.tar.gz models/ordos.tar.gz" in DOCKERFILE
    assert "python -m bot.build" in DOCKERFILE  # build/jieba, which config.yml's tokenizer reads
    assert "build/jieba" in (ROOT / "config.yml").read_text(encoding="utf-8")
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    for name in copied | {"models/ordos.tar.gz", "requirements.lock"}:
        assert any(line.rstrip("/") == "!" + name for line in ignore), name
    assert "--require-hashes -r /tmp/requirements.lock" in DOCKERFILE
    assert re.search(r"^USER ordos$", DOCKERFILE, re.M)


# --- commands and ports ------------------------------------------------------------------

def flags(args: list[str]) -> dict:
    out, i = {}, 0
    while i < len(args):
        if args[i].startswith("--"):
            takes_value = i + 1 < len(args) and not args[i + 1].startswith("--")
            out[args[i]] = args[i + 1] if takes_value else True
            i += 2 if takes_value else 1
        else:
            i += 1
    return out


def test_rasa_is_started_as_serve_sh_starts_it():
    line = re.search(r"exec \.venv/bin/rasa run (--interface.*?) \"\$@\"", SERVE, re.S).group(1)
    serve = flags(line.replace("\\\n", " ").replace('"', "").split())
    compose = flags(COMPOSE["services"]["rasa"]["command"][-1].replace('"', "").replace("$$", "$").split()[3:])
    helm = flags(HELM["args"][1:])
    assert serve["--model"] == "models/ordos.tar.gz"
    for started in (compose, helm):
        assert started["--model"].endswith(serve["--model"])
        assert started["--endpoints"].endswith("endpoints.yml") and started["--credentials"].endswith("credentials.yml")
        assert started["--enable-api"] is True and started["--auth-token"]
        assert started["--port"] == "5005"
    assert HELM["command"] == ["rasa"] and HELM["args"][0] == "run"
    assert compose["--auth-token"] == "$RASA_TOKEN"
    assert helm["--auth-token"] == "$(RASA_AUTH_TOKEN)" and "RASA_AUTH_TOKEN" in helm_env()
    assert {"--model", "--endpoints", "--credentials", "--enable-api", "--auth-token"} <= set(serve)


def test_the_action_server_and_the_web_app_are_started_as_make_run_starts_them():
    expected = ["rasa", "run", "actions", "--actions", "actions.actions", "--port", "5055"]
    assert "--actions actions.actions" in SERVE
    assert COMPOSE["services"]["actions"]["command"] == expected
    assert container("ordos-actions")["command"] == expected
    assert COMPOSE["services"]["web"]["command"] == container("ordos-web")["command"] == ["python", "-m", "bot.web"]
    assert re.search(r'^CMD \["python", "-m", "bot.web"\]', DOCKERFILE, re.M)


def test_ports_agree_everywhere():
    from bot.config import Settings

    assert Settings().web_port == 8000
    assert re.search(r"^EXPOSE 8000 5005 5055$", DOCKERFILE, re.M)
    services = COMPOSE["services"]
    assert services["web"]["expose"] == ["8000"] and services["web"]["environment"]["WEB_PORT"] == "8000"
    assert services["rasa"]["expose"] == ["5005"] and services["actions"]["expose"] == ["5055"]
    assert [p.split(":")[-1] for p in services["nginx"]["ports"]] == ["80"] and "listen 80;" in NGINX
    assert re.search(r"server web:8000\b", NGINX)
    for name in ("rasa", "actions", "postgres", "redis", "web"):
        assert "ports" not in services[name], f"{name} must not be published: only nginx is"
    # Kubernetes: the Services reach the containers' ports; the web app's URLs reach the Services.
    web, actions = container("ordos-web"), container("ordos-actions")
    assert web["ports"] == [{"name": "http", "containerPort": 8000}]
    assert actions["ports"] == [{"name": "http", "containerPort": 5055}]
    assert k8s("Service", "ordos-web")["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "http"}]
    assert k8s("Service", "ordos-actions")["spec"]["ports"] == [{"name": "http", "port": 5055, "targetPort": "http"}]
    assert HELM["applicationSettings"]["port"] == 5005 and HELM["fullnameOverride"] == "ordos-rasa"
    env = k8s_env(web)
    assert env["WEB_PORT"] == "8000"
    assert urlsplit(env["RASA_URL"]).netloc == f"{HELM['fullnameOverride']}:5005"
    assert urlsplit(env["ACTION_SERVER_URL"]).netloc == "ordos-actions:5055"
    assert HELM["rasa-action-server"]["external"]["url"] == "http://ordos-actions:5055/webhook"
    assert urlsplit(services["web"]["environment"]["RASA_URL"]).netloc == "rasa:5005"
    assert urlsplit(services["web"]["environment"]["ACTION_SERVER_URL"]).netloc == "actions:5055"
    assert services["rasa"]["environment"]["ACTION_SERVER_URL"] == "http://actions:5055"  # endpoints.yml adds /webhook
    assert ENDPOINTS["action_endpoint"]["url"] == "${ACTION_SERVER_URL}/webhook"


# --- probes -----------------------------------------------------------------------------

def test_probes_ask_what_the_code_serves():
    chat = (ROOT / "bot" / "web" / "chat.py").read_text(encoding="utf-8")
    assert '@bp.get("/ready")' in chat
    assert 'f"{settings.rasa_url}/"' in chat and 'f"{settings.action_server_url}/health"' in chat
    assert '@app.get("/")' in (SITE / "rasa" / "server.py").read_text(encoding="utf-8")
    assert '@app.get("/health")' in (SITE / "rasa_sdk" / "endpoint.py").read_text(encoding="utf-8")

    web, actions = container("ordos-web"), container("ordos-actions")
    assert web["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert actions["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert actions["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    for probe in ("readinessProbe", "livenessProbe"):
        assert HELM[probe]["httpGet"]["path"] == "/" and HELM[probe]["httpGet"]["port"] == "http"
    # Loading the model must not look like a dead Rasa.
    assert HELM["livenessProbe"]["initialDelaySeconds"] >= 120

    def checked_url(service):
        return re.search(r"urlopen\('([^']+)'", " ".join(COMPOSE["services"][service]["healthcheck"]["test"])).group(1)

    assert checked_url("web") == "http://127.0.0.1:8000/ready"
    assert checked_url("rasa") == "http://127.0.0.1:5005/"
    assert checked_url("actions") == "http://127.0.0.1:5055/health"


# --- environment ------------------------------------------------------------------------

def test_every_environment_variable_is_one_the_code_reads():
    services = COMPOSE["services"]
    allowed = {"web": WEB_NAMES, "rasa": RASA_NAMES, "actions": ACTIONS_NAMES}
    for name, names in allowed.items():
        unknown = set(services[name]["environment"]) - names
        assert not unknown, f"compose {name}: {unknown}"
    assert not set(k8s_env(container("ordos-web"))) - WEB_NAMES
    assert not set(k8s_env(container("ordos-actions"))) - ACTIONS_NAMES
    args_names = set(re.findall(r"\$\(([A-Z_0-9]+)\)", " ".join(HELM["args"])))
    chart_endpoint_names = set(re.findall(r"\$\{([A-Z_0-9]+)\}", yaml.safe_dump(HELM["applicationSettings"])))
    assert not set(helm_env()) - (RASA_NAMES | args_names | chart_endpoint_names)
    dockerfile_env = set(re.findall(r"^\s*(?:ENV )?([A-Z_0-9]+)=", DOCKERFILE.split("ENV PATH=", 1)[1], re.M))
    assert not dockerfile_env - (CONFIG_NAMES | ENV_SH_NAMES | set(LIBRARY_NAMES) | {"PATH", "PYTHONPATH",
                                                                                       "PYTHONUNBUFFERED"})


def test_rasa_gets_every_setting_its_endpoints_read():
    assert ENDPOINT_NAMES <= set(COMPOSE["services"]["rasa"]["environment"])
    chart = HELM["applicationSettings"]
    chart_names = set(re.findall(r"\$\{([A-Z_0-9]+)\}", yaml.safe_dump(chart["endpoints"])))
    # ACTION_SERVER_URL is set by the chart itself (rasa-action-server.external.url).
    assert chart_names - {"ACTION_SERVER_URL"} <= set(helm_env())
    assert set(re.findall(r"\$\(([A-Z_0-9]+)\)", " ".join(HELM["args"]))) <= set(helm_env())


def test_the_chart_serves_the_same_endpoints_and_channels_as_the_repository():
    chart = HELM["applicationSettings"]
    store = chart["endpoints"]["trackerStore"]
    assert store["enabled"] and store["type"] == ENDPOINTS["tracker_store"]["type"]
    assert store["type"] == "rasa_addons.tracker_store.OrdosSQLTrackerStore"
    assert store["dialect"] == "postgresql" and store["url"] == "${TRACKER_DB_URL}"
    assert all(store[k] is None for k in ("port", "username", "password", "db", "login_db"))  # the chart's own unset
    lock = chart["endpoints"]["lockStore"]
    assert lock["enabled"] and lock["type"] == ATOMIC_LOCK_STORE and lock["db"] == str(ENDPOINTS["lock_store"]["db"])
    assert set(chart["credentials"]["additionalChannelCredentials"]) == set(CREDENTIALS)
    assert chart["initialModel"] == "" and chart["trainInitialModel"] is False
    for bundled in ("postgresql", "redis", "rabbitmq", "duckling", "rasa-action-server"):
        assert HELM[bundled]["install"] is False  # managed services; our own action server
    assert HELM["nginx"]["enabled"] is False and HELM["ingress"]["enabled"] is False
    # Several pods against one managed server: a small pool each, not Rasa's 50 + 100.
    for env in (helm_env(), COMPOSE["services"]["rasa"]["environment"]):
        assert int(env["SQL_POOL_SIZE"]) + int(env["SQL_MAX_OVERFLOW"]) <= 20


def test_every_secret_comes_from_the_one_secret_and_every_compose_secret_from_the_env_file():
    (secret,) = K8S["secret.example"]
    keys = set(secret["stringData"])
    refs = []
    for c in (container("ordos-web"), container("ordos-actions")):
        refs += [v["secretKeyRef"] for v in k8s_env(c).values() if isinstance(v, dict)]
    refs += [v["secretKeyRef"] for v in helm_env().values() if isinstance(v, dict)]
    assert refs and all(r["name"] == secret["metadata"]["name"] and r["key"] in keys for r in refs)
    assert {r["key"] for r in refs} == keys  # and nothing in the Secret goes unused
    example = dict(line.split("=", 1) for line in (DEPLOY / "example.env").read_text(encoding="utf-8").splitlines()
                   if line and not line.startswith("#"))
    compose_text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{([A-Z_0-9]+)", compose_text))
    assert used - {"HOTLINE", "HOTLINE_NAME", "RETENTION_DAYS"} <= set(example), used - set(example)
    for required in re.findall(r"\$\{([A-Z_0-9]+):\?", compose_text):
        assert example[required] == "", f"{required}: the example must not carry a value"


@pytest.mark.parametrize("where", ["compose", "k8s"])
def test_what_replicas_must_share_is_shared(where):
    """Several web replicas accept each other's conversation ids only with one
    SECRET_KEY; several action servers hash senders alike only with one
    REVIEW_SALT; several Rasa replicas order a conversation's messages only with
    a shared (Redis) lock store."""
    if where == "compose":
        services = COMPOSE["services"]
        web, actions, rasa = (services[s]["environment"] for s in ("web", "actions", "rasa"))
        assert rasa["LOCK_STORE_TYPE"] == ATOMIC_LOCK_STORE and rasa["REDIS_HOST"] == "redis"
    else:
        web, actions = k8s_env(container("ordos-web")), k8s_env(container("ordos-actions"))
        assert k8s("Deployment", "ordos-web")["spec"]["replicas"] >= 2
        assert k8s("Deployment", "ordos-actions")["spec"]["replicas"] >= 2
        assert HELM["replicaCount"] >= 2 and HELM["applicationSettings"]["endpoints"]["lockStore"]["type"] == ATOMIC_LOCK_STORE
    assert "SECRET_KEY" in web and "REVIEW_SALT" in actions
    assert "TRACKER_DB_URL" in web  # retention deletes old conversations from the tracker store


def test_rollouts_never_take_away_a_serving_replica():
    for name in ("ordos-web", "ordos-actions"):
        strategy = k8s("Deployment", name)["spec"]["strategy"]
        assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
        assert k8s("PodDisruptionBudget", name)["spec"]["minAvailable"] >= 1
    assert HELM["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_only_the_web_app_reaches_rasa_and_only_rasa_the_action_server():
    rasa_from = k8s("NetworkPolicy", "ordos-rasa-from-web")["spec"]
    assert rasa_from["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "rasa",
                                                       "app.kubernetes.io/instance": HELM["fullnameOverride"]}
    assert rasa_from["ingress"][0]["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "ordos-web"}}}]
    assert rasa_from["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 5005}]
    actions_from = k8s("NetworkPolicy", "ordos-actions-from-rasa")["spec"]
    assert actions_from["ingress"][0]["from"][0]["podSelector"]["matchLabels"] == rasa_from["podSelector"]["matchLabels"]
    assert actions_from["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 5055}]
    labels = k8s("Deployment", "ordos-web")["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "ordos-web"


def test_the_proxy_is_the_one_address_the_web_app_trusts():
    nginx = COMPOSE["services"]["nginx"]
    address = nginx["networks"]["assistant"]["ipv4_address"]
    assert COMPOSE["services"]["web"]["environment"]["TRUSTED_PROXIES"] == address
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in NGINX
    assert "proxy_next_upstream off;" in NGINX  # a message is never sent twice by the proxy
    from bot.config import Settings

    body_limit = int(re.search(r"client_max_body_size (\d+)k;", NGINX).group(1)) * 1024
    assert body_limit >= Settings().max_body_bytes  # the app, not nginx, refuses an oversized body


def test_every_container_has_memory_requests_and_limits():
    for c in (container("ordos-web"), container("ordos-actions")):
        assert c["resources"]["requests"]["memory"] and c["resources"]["limits"]["memory"]
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert {m["mountPath"] for m in c["volumeMounts"]} == {"/app/var", "/tmp"}
    assert HELM["resources"]["requests"]["memory"] and HELM["resources"]["limits"]["memory"]
    for name in ("web", "rasa", "actions"):
        assert COMPOSE["services"][name]["mem_limit"]


def test_the_lock_store_named_for_replicas_is_rasas_redis_store_made_atomic():
    from rasa.core.lock_store import RedisLockStore
    from rasa.shared.utils.common import class_from_module_path

    assert issubclass(class_from_module_path(ATOMIC_LOCK_STORE), RedisLockStore)
    assert f"export LOCK_STORE_TYPE={ATOMIC_LOCK_STORE}" in (ROOT / "scripts" / "env.sh").read_text(encoding="utf-8")
