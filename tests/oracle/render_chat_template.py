"""Reference renderer: Jinja2 configured the way Hugging Face transformers renders chat templates.

Reads {"template": str, "cases": [context, ...]} as JSON on stdin, prints a JSON list of strings.
"""
import json
import sys

from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise Exception(message)


def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception

request = json.load(sys.stdin)
template = env.from_string(request["template"])
print(json.dumps([template.render(**case) for case in request["cases"]]))
