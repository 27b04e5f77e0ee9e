"""Interoperability: a stock OAuth client we did not write (authlib) completes PAR +
authorization code + PKCE + private_key_jwt against the vault, reads, and refreshes;
a second JOSE library (PyJWT) verifies the access tokens with the keys of /oauth/jwks."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt as pyjwt
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from cryptography.hazmat.primitives import serialization
from joserfc.jwk import ECKey
from support.oauthclient import DETAILS, Service, location
from support.webwallet import ORIGIN, WebWallet


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):  # type: ignore[misc]
    """authlib's private_key_jwt with a 2-minute assertion: the vault refuses assertions
    that live over 5 minutes, and authlib's default lives an hour."""

    def sign(self, auth: Any, token_endpoint: str) -> str:
        return str(private_key_jwt_sign(auth.client_secret, client_id=auth.client_id,
                                        token_endpoint=token_endpoint, alg=self.alg,
                                        header=self.headers, expires_in=120))


def authlib_client(web: WebWallet, svc: Service, **kw: Any) -> AsyncOAuth2Client:
    pem = svc.key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return AsyncOAuth2Client(
        client_id=svc.client_id, client_secret=ECKey.import_key(pem),
        token_endpoint_auth_method="private_key_jwt", redirect_uri=svc.redirect_uri,
        code_challenge_method="S256", transport=httpx.ASGITransport(app=web.app),
        base_url=ORIGIN, **kw)


def test_authlib_completes_par_code_pkce_and_private_key_jwt(web: WebWallet) -> None:
    b = web.sign_up()
    svc = Service.register(web.ctx, b.client, ORIGIN)
    verifier, state = generate_token(48), generate_token(20)

    async def push() -> tuple[dict[str, Any], str]:
        async with authlib_client(web, svc) as oauth:
            meta = (await oauth.request("GET", "/.well-known/oauth-authorization-server",
                                        withhold_token=True)).json()
            oauth.register_client_auth_method(ShortLivedPrivateKeyJWT(
                meta["pushed_authorization_request_endpoint"], alg="ES256"))
            r = await oauth.request(
                "POST", meta["pushed_authorization_request_endpoint"], withhold_token=True,
                auth=oauth.client_auth("private_key_jwt"), data={
                    "response_type": "code", "client_id": svc.client_id,
                    "redirect_uri": svc.redirect_uri, "state": state,
                    "code_challenge": create_s256_code_challenge(verifier),
                    "code_challenge_method": "S256",
                    "authorization_details": json.dumps([DETAILS])})
            assert r.status_code == 201, r.text
            return meta, r.json()["request_uri"]

    meta, request_uri = asyncio.run(push())
    # The citizen's part, in the wallet.
    link = meta["authorization_endpoint"].removeprefix(ORIGIN) + "?" + urlencode(
        {"client_id": svc.client_id, "request_uri": request_uri})
    wallet_path = location(b.get(link, follow_redirects=False))
    grant_id = location(b.get(wallet_path, follow_redirects=False)).rsplit("/", 1)[1]
    answer = b.passkey_post(f"/wallet/grants/{grant_id}/approve")
    callback = location(b.get(answer.json()["redirect"], follow_redirects=False))

    async def exchange() -> tuple[dict[str, Any], httpx.Response, dict[str, Any]]:
        async with authlib_client(web, svc, state=state) as oauth:
            oauth.register_client_auth_method(ShortLivedPrivateKeyJWT(
                meta["token_endpoint"], alg="ES256"))
            token = await oauth.fetch_token(meta["token_endpoint"],
                                            authorization_response=callback,
                                            code_verifier=verifier)
            read = await oauth.get("/v1/data")
            refreshed = await oauth.refresh_token(meta["token_endpoint"])
            return dict(token), read, dict(refreshed)

    token, read, refreshed = asyncio.run(exchange())
    assert token["grant_id"] == grant_id and token["token_type"] == "Bearer"
    assert read.status_code == 200, read.text
    assert set(read.json()["data"]) == {"identity.name", "address.home"}
    assert refreshed["refresh_token"] != token["refresh_token"]

    # PyJWT checks the tokens with nothing but /oauth/jwks.
    keys = {k["kid"]: k for k in b.client.get(meta["jwks_uri"]).json()["keys"]}
    for access_token in (token["access_token"], refreshed["access_token"]):
        header = pyjwt.get_unverified_header(access_token)
        assert header["typ"] == "at+jwt" and header["alg"] == "ES256"
        claims = pyjwt.decode(access_token, pyjwt.PyJWK(keys[header["kid"]]).key,
                              algorithms=["ES256"], audience=ORIGIN + "/v1", issuer=ORIGIN,
                              options={"require": ["exp", "iat", "sub", "jti"]})
        assert claims["client_id"] == svc.client_id and claims["grant_id"] == grant_id
        assert claims["exp"] - claims["iat"] <= 300
