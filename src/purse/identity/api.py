"""JSON routes of the identity domain: sign-up, verification, tokens, the caller's sessions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response, status

from purse.deps import (
    ActorDep,
    CurrentDep,
    DatabaseDep,
    IdentityDep,
    IdPath,
    require,
    step_up_for,
    user_actor,
)
from purse.identity import contacts as identity_contacts
from purse.identity import credentials as identity_credentials
from purse.identity import schemas, sessions, twofactor
from purse.identity import signin as identity_signin
from purse.identity import signup as identity_signup
from purse.identity import users as identity_users
from purse.identity.errors import CodeInvalid, SessionInvalid
from purse.identity.sessions import Authenticated
from purse.problems import request_locale

router = APIRouter(prefix="/v1", tags=["identity"])


@router.post(
    "/auth/signup", status_code=status.HTTP_202_ACCEPTED, response_model=schemas.SignUpRead
)
def sign_up(
    body: schemas.SignUpCreate, database: DatabaseDep, identity: IdentityDep, actor: ActorDep
) -> schemas.SignUpRead:
    """Create an account; a code goes to each contact. The answer never says whether one existed."""
    result = database.run(
        lambda session: identity_signup.sign_up(
            session,
            identity=identity,
            handle=body.handle,
            display_name=body.display_name,
            password=body.password,
            locale=body.locale,
            actor=actor,
            phone=body.phone,
            email=body.email,
        )
    )
    return schemas.SignUpRead(
        status=schemas.SignUpStatus.verification_sent,
        channels=[schemas.ContactChannel(channel) for channel in result.channels],
    )


@router.post("/auth/verify", response_model=schemas.StatusRead)
def verify_contact(
    body: schemas.VerifyCreate, database: DatabaseDep, identity: IdentityDep, actor: ActorDep
) -> schemas.StatusRead:
    """Confirm a phone number or email address with the code sent to it."""
    outcome = database.run(
        lambda session: identity_signup.verify_identifier(
            session,
            identity=identity,
            identifier=body.identifier,
            channel=body.channel,
            code=body.code,
            actor=actor,
        )
    )
    outcome.raise_for_error()  # after the commit, so a wrong code is counted
    return schemas.StatusRead(status="verified")


@router.post("/auth/codes", status_code=status.HTTP_202_ACCEPTED, response_model=schemas.StatusRead)
def request_verification_code(
    body: schemas.CodeRequest, database: DatabaseDep, identity: IdentityDep
) -> schemas.StatusRead:
    """Send a new verification code (at most one a minute); the same answer for every contact."""
    database.run(
        lambda session: identity_signup.request_verification_code(
            session, identity=identity, identifier=body.identifier, channel=body.channel
        )
    )
    return schemas.StatusRead(status="sent_if_known")


@router.post(
    "/auth/password-reset", status_code=status.HTTP_202_ACCEPTED, response_model=schemas.StatusRead
)
def request_password_reset(
    body: schemas.PasswordResetRequest,
    database: DatabaseDep,
    identity: IdentityDep,
    actor: ActorDep,
) -> schemas.StatusRead:
    """Send a reset code to a verified phone or email; the same answer for every contact."""
    database.run(
        lambda session: identity_credentials.request_password_reset(
            session,
            identity=identity,
            identifier=body.identifier,
            channel=body.channel,
            actor=actor,
        )
    )
    return schemas.StatusRead(status="sent_if_known")


@router.post("/auth/password-reset/confirm", response_model=schemas.StatusRead)
def confirm_password_reset(
    body: schemas.PasswordResetConfirm,
    database: DatabaseDep,
    identity: IdentityDep,
    actor: ActorDep,
) -> schemas.StatusRead:
    """Set a new password with the code; every session ends and the account unlocks."""
    outcome = database.run(
        lambda session: identity_credentials.reset_password(
            session,
            identity=identity,
            identifier=body.identifier,
            channel=body.channel,
            code=body.code,
            new_password=body.new_password,
            second_factor=body.second_factor,
            actor=actor,
        )
    )
    outcome.raise_for_error()  # after the commit, so a wrong code is counted
    return schemas.StatusRead(status="password_changed")


@router.post("/auth/token", status_code=status.HTTP_201_CREATED, response_model=schemas.TokenRead)
def sign_in(
    body: schemas.TokenCreate,
    database: DatabaseDep,
    identity: IdentityDep,
    actor: ActorDep,
    user_agent: Annotated[str, Header()] = "",
) -> schemas.TokenRead:
    """Sign in with a handle, phone or email and a password; returns an API token pair."""
    outcome, issued = database.run(
        lambda session: identity_signin.sign_in(
            session,
            identity=identity,
            identifier=body.identifier,
            password=body.password,
            second_factor=body.second_factor,
            kind="api",
            user_agent=user_agent,
            actor=actor,
        )
    )
    outcome.raise_for_error()  # after the commit, so the failure is counted
    assert issued is not None and issued.refresh_token is not None
    return schemas.TokenRead(
        access_token=issued.token,
        expires_at=issued.token_expires_at,
        refresh_token=issued.refresh_token,
        session_id=issued.session_id,
    )


@router.post("/auth/refresh", response_model=schemas.TokenRead)
def refresh_token(
    body: schemas.RefreshCreate, database: DatabaseDep, actor: ActorDep
) -> schemas.TokenRead:
    """Trade a refresh token for a new pair; the old pair stops working."""
    settings = database.settings
    issued = database.run(
        lambda session: sessions.refresh(
            session, settings=settings, refresh_token=body.refresh_token, actor=actor
        )
    )
    if issued is None or issued.refresh_token is None:
        raise SessionInvalid()
    return schemas.TokenRead(
        access_token=issued.token,
        expires_at=issued.token_expires_at,
        refresh_token=issued.refresh_token,
        session_id=issued.session_id,
    )


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def sign_out(current: CurrentDep, database: DatabaseDep, actor: ActorDep) -> Response:
    """End the session of this access token."""
    database.run(
        lambda session: sessions.end_session(
            session,
            user_id=current.user_id,
            session_id=current.session_id,
            actor=user_actor(actor, current),
        )
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=schemas.MeRead)
def get_me(current: CurrentDep, database: DatabaseDep, identity: IdentityDep) -> schemas.MeRead:
    """The signed-in user, with phone and email masked."""
    found = database.run(
        lambda session: identity_users.profile(session, identity=identity, user_id=current.user_id),
        write=False,
    )
    return schemas.MeRead.model_validate(found, from_attributes=True)


@router.get("/me/sessions", response_model=list[schemas.SessionRead])
def list_my_sessions(
    request: Request, current: CurrentDep, database: DatabaseDep
) -> list[schemas.SessionRead]:
    """Where the user is signed in, most recently used first; each device in the caller's
    language (Accept-Language), with its names apart for programs."""
    rows = database.run(
        lambda session: sessions.list_sessions(
            session, user_id=current.user_id, current_session_id=current.session_id
        ),
        write=False,
    )
    locale = request_locale(request)
    return [schemas.SessionRead.of(row, locale) for row in rows]


@router.delete("/me/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
def end_my_session(
    session_id: IdPath, current: CurrentDep, database: DatabaseDep, actor: ActorDep
) -> Response:
    """Sign out one of the user's devices."""
    database.run(
        lambda session: sessions.end_session(
            session,
            user_id=current.user_id,
            session_id=session_id,
            actor=user_actor(actor, current),
        )
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/me/sessions/end-others", response_model=schemas.EndedRead)
def end_my_other_sessions(
    current: CurrentDep, database: DatabaseDep, actor: ActorDep
) -> schemas.EndedRead:
    """Sign out every device but this one."""
    count = database.run(
        lambda session: sessions.end_all_sessions(
            session,
            user_id=current.user_id,
            actor=user_actor(actor, current),
            reason="ended_by_user",
            except_session_id=current.session_id,
        )
    )
    return schemas.EndedRead(ended=count)


@router.post("/auth/step-up", response_model=schemas.StatusRead)
def step_up(
    body: schemas.StepUpCreate,
    current: CurrentDep,
    database: DatabaseDep,
    identity: IdentityDep,
    actor: ActorDep,
) -> schemas.StatusRead:
    """Confirm the password (and 2FA code) again before a sensitive action."""
    outcome = database.run(
        lambda session: identity_signin.step_up(
            session,
            identity=identity,
            user_id=current.user_id,
            session_id=current.session_id,
            password=body.password,
            second_factor=body.second_factor,
            actor=user_actor(actor, current),
        )
    )
    outcome.raise_for_error()  # after the commit, so a wrong password is counted
    return schemas.StatusRead(status="confirmed")


@router.post("/me/2fa/totp", response_model=schemas.TotpEnrolmentRead)
def begin_totp(
    current: Annotated[Authenticated, Depends(step_up_for("two_factor"))],
    database: DatabaseDep,
    identity: IdentityDep,
    actor: ActorDep,
) -> schemas.TotpEnrolmentRead:
    """Start setting up an authenticator app: scan the QR code or type the secret."""
    enrolment = database.run(
        lambda session: twofactor.begin_totp(
            session, identity=identity, user_id=current.user_id, actor=user_actor(actor, current)
        )
    )
    return schemas.TotpEnrolmentRead.model_validate(enrolment, from_attributes=True)


@router.post("/me/2fa/totp/confirm", response_model=schemas.RecoveryCodesRead)
def confirm_totp(
    body: schemas.TotpConfirm,
    current: CurrentDep,
    database: DatabaseDep,
    identity: IdentityDep,
    actor: ActorDep,
) -> schemas.RecoveryCodesRead:
    """Turn 2FA on with the app's first code; the recovery codes are shown this once."""
    codes = database.run(
        lambda session: twofactor.confirm_totp(
            session,
            identity=identity,
            user_id=current.user_id,
            code=body.code,
            actor=user_actor(actor, current),
        )
    )
    if codes is None:
        raise CodeInvalid()
    return schemas.RecoveryCodesRead(recovery_codes=codes)


@router.delete("/me/2fa/totp", status_code=status.HTTP_204_NO_CONTENT)
def disable_totp(
    current: Annotated[Authenticated, Depends(step_up_for("two_factor"))],
    database: DatabaseDep,
    identity: IdentityDep,
    actor: ActorDep,
) -> Response:
    """Turn 2FA off (needs a step-up in the last few minutes)."""
    database.run(
        lambda session: twofactor.disable_totp(
            session, identity=identity, user_id=current.user_id, actor=user_actor(actor, current)
        )
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/me/2fa/recovery-codes", response_model=schemas.RecoveryCodesRead)
def regenerate_recovery_codes(
    current: Annotated[Authenticated, Depends(step_up_for("two_factor"))],
    database: DatabaseDep,
    identity: IdentityDep,
    actor: ActorDep,
) -> schemas.RecoveryCodesRead:
    """Ten new recovery codes; the old ones stop working."""
    codes = database.run(
        lambda session: twofactor.regenerate_recovery_codes(
            session, identity=identity, user_id=current.user_id, actor=user_actor(actor, current)
        )
    )
    return schemas.RecoveryCodesRead(recovery_codes=codes)


@router.put("/admin/users/{user_id}/role", response_model=schemas.StatusRead, tags=["admin"])
def change_user_role(
    user_id: IdPath,
    body: schemas.RoleChange,
    current: Annotated[Authenticated, Depends(require("users:manage"))],
    database: DatabaseDep,
    actor: ActorDep,
) -> schemas.StatusRead:
    """Give a user another role (admins only; audited)."""
    database.run(
        lambda session: identity_users.change_role(
            session, user_id=user_id, role=body.role, actor=user_actor(actor, current)
        )
    )
    return schemas.StatusRead(status="role_changed")


@router.post("/me/password", response_model=schemas.StatusRead)
def change_password(
    body: schemas.PasswordChange,
    current: Annotated[Authenticated, Depends(step_up_for("change_password"))],
    database: DatabaseDep,
    identity: IdentityDep,
    actor: ActorDep,
) -> schemas.StatusRead:
    """Set a new password; every other device is signed out and the user is told."""
    database.run(
        lambda session: identity_credentials.change_password(
            session,
            identity=identity,
            user_id=current.user_id,
            keep_session_id=current.session_id,
            new_password=body.new_password,
            actor=user_actor(actor, current),
        )
    )
    return schemas.StatusRead(status="password_changed")


@router.post("/me/contact", status_code=status.HTTP_202_ACCEPTED, response_model=schemas.StatusRead)
def change_contact(
    body: schemas.ContactChange,
    current: Annotated[Authenticated, Depends(step_up_for("change_contact"))],
    database: DatabaseDep,
    identity: IdentityDep,
    actor: ActorDep,
) -> schemas.StatusRead:
    """Start changing the phone or email: a code goes to the new one."""
    database.run(
        lambda session: identity_contacts.request_contact_change(
            session,
            identity=identity,
            user_id=current.user_id,
            channel=body.channel,
            value=body.value,
            actor=user_actor(actor, current),
        )
    )
    return schemas.StatusRead(status="sent_if_available")


@router.post("/me/contact/confirm", response_model=schemas.StatusRead)
def confirm_contact(
    body: schemas.ContactConfirm,
    current: Annotated[Authenticated, Depends(step_up_for("change_contact"))],
    database: DatabaseDep,
    identity: IdentityDep,
    actor: ActorDep,
) -> schemas.StatusRead:
    """Finish the change with the code sent to the new contact."""
    outcome = database.run(
        lambda session: identity_contacts.confirm_contact_change(
            session,
            identity=identity,
            user_id=current.user_id,
            channel=body.channel,
            code=body.code,
            actor=user_actor(actor, current),
        )
    )
    outcome.raise_for_error()
    return schemas.StatusRead(status="contact_changed")
