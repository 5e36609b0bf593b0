"""The portal's pool of connections to the service (portal/client.py): connections are reused
across requests, and none carries one user's identity into another user's call."""
from __future__ import annotations

import threading

from flask import g

from portal import client as portal_client
from portal.client import Pool, PooledClient


def test_requests_reuse_pooled_connections_and_each_call_is_its_users(app, portal, sign_in, client_for, demo):
    sign_in(portal, "ana")
    other = app.test_client()
    sign_in(other, "tom")
    for client, user in [(portal, "ana"), (other, "tom")] * 3:
        page = client.get("/account")
        assert page.status_code == 200 and user in page.get_data(as_text=True)
    assert app.extensions[portal_client.POOL_KEY].idle() == 1  # one after another: one connection, reused


def test_concurrent_users_on_few_connections_are_each_answered_as_themselves(server, client_for):
    pool = Pool("127.0.0.1", server.bound_port(), size=2)
    users = [f"user{i}" for i in range(6)]
    tokens = {user: client_for(user, ["analyst"]).token for user in users}
    wrong, calls = [], 40

    def calls_as(user: str) -> None:
        client = PooledClient(pool, tokens[user])
        for _ in range(calls):
            seen = client.whoami().user
            if seen != user:
                wrong.append((user, seen))
    threads = [threading.Thread(target=calls_as, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == [] and pool.idle() <= 2
    pool.close()


def test_a_refused_token_ends_only_its_own_call_and_the_connection_serves_the_next(server, client_for, app):
    pool = Pool("127.0.0.1", server.bound_port(), size=1)
    good = PooledClient(pool, client_for("ana", ["analyst"]).token)
    with app.test_request_context():
        bad = portal_client.UserClient(pool, "not-a-token")
        try:
            bad.whoami()
        except Exception as error:  # noqa: BLE001 - the service's Unauthenticated
            assert type(error).__name__ == "Unauthenticated" and g.token_refused
        assert good.whoami().user == "ana" and pool.idle() == 1
