"""Typed dependencies: the heavy parts live on app.state, built once in the lifespan."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.settings import ApiSettings
from vitrine.wiring import Services


def get_services(request: Request) -> Services:
    return request.app.state.services


def get_api_settings(request: Request) -> ApiSettings:
    return request.app.state.api_settings


def get_dispatch(request: Request):
    return request.app.state.dispatch


ServicesDep = Annotated[Services, Depends(get_services)]
ApiSettingsDep = Annotated[ApiSettings, Depends(get_api_settings)]
DispatchDep = Annotated[object, Depends(get_dispatch)]
