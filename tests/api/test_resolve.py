"""Path and host resolution: Micro's table (reference §4.2, §4.4)."""

from __future__ import annotations

import pytest

from micro.api.resolve import resolve, subdomain_namespace


@pytest.mark.parametrize(
    ("path", "service", "endpoint"),
    [
        ("/foo", "foo", "Foo.Call"),
        ("/foo/bar", "foo", "Foo.Bar"),
        ("/foo/foo/bar", "foo", "Foo.Bar"),
        ("/foo/bar/baz", "foo", "Bar.Baz"),
        ("/foo/bar/baz-xyz", "foo", "Bar.BazXyz"),
        ("/foo/bar/baz/cat", "foo.bar", "Baz.Cat"),
        ("/foo/bar/baz/cat/car", "foo.bar.baz", "Cat.Car"),
        ("/v1/foo/bar", "v1.foo", "Foo.Bar"),
        ("/v1/foo/bar/baz", "v1.foo", "Bar.Baz"),
        ("/v1/foo/bar/baz/cat", "v1.foo.bar", "Baz.Cat"),
        ("/helloworld", "helloworld", "Helloworld.Call"),
        ("/helloworld/call", "helloworld", "Helloworld.Call"),
        ("/helloworld/Helloworld/Call", "helloworld", "Helloworld.Call"),
        ("/helloworld/ping-pong", "helloworld", "Helloworld.PingPong"),
        ("/helloworld/fooBar", "helloworld", "Helloworld.FooBar"),
        ("/hello-world/call", "hello-world", "HelloWorld.Call"),
        ("//helloworld//call/", "helloworld", "Helloworld.Call"),
    ],
)
def test_micro_resolver(path: str, service: str, endpoint: str) -> None:
    assert resolve(path) == (service, endpoint)


@pytest.mark.parametrize("path", ["/", "", "/..", "/foo/../bar"])
def test_paths_that_name_nothing(path: str) -> None:
    assert resolve(path) is None


@pytest.mark.parametrize(
    ("host", "namespace"),
    [
        ("staging.foo.myapp.com", "foo-staging"),
        ("foo.m3o.app", "foo"),
        ("foo.myapp.com:8080", "foo"),
        ("api.myapp.com", None),
        ("myapp.com", None),
        ("localhost:8080", None),
        ("127.0.0.1:8080", None),
        ("[::1]:8080", None),
    ],
)
def test_subdomain_rule(host: str, namespace: str | None) -> None:
    assert subdomain_namespace(host) == namespace
