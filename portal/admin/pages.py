"""The administrators' pages: users, roles and project grants, tiered access, trigger
rules (enable, disable), alert thresholds, and the audit log (filtered, paged, exported as TSV or JSON).

Admins only: everyone else gets a 403 page. That check is for the message; the service refuses
every one of these calls to a non-admin anyway. Every form carries a CSRF token (CSRFProtect);
bad input is refused with a message naming the field, by the form or in the service's words.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, get_flashed_messages, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from thriftpy2.transport import TTransportException
from wtforms import IntegerField, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Regexp
from wtforms.widgets import CheckboxInput, ListWidget

from metadata.auth import ACCESS, ROLES
from metadata.client import ERRORS
from metadata.idl import metadata_thrift as T
from portal import errors
from portal.admin import audit as audit_view
from portal.client import UNREACHABLE, get_client, sentence
from portal.notebooks.jupyter import HubError, hub

bp = Blueprint("admin", __name__, url_prefix="/admin")
MIN_PASSWORD = 10
NAME_RULE = r"^[A-Za-z0-9._@-]{1,128}$"


class AddUserForm(FlaskForm):
    username = StringField("User name", validators=[
        DataRequired("give a user name"), Regexp(NAME_RULE, message="use 1 to 128 letters, digits, . _ @ -")])
    password = PasswordField("Password", validators=[
        DataRequired("give a password"), Length(MIN_PASSWORD, 1024, f"use {MIN_PASSWORD} to 1024 characters")])
    # least privilege: no role is preselected, the admin chooses one
    role = SelectField("Role", choices=["", *ROLES], default="", validators=[DataRequired("choose a role")],
                       validate_choice=True)  # its options are written out in admin_users.html


class PasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[
        DataRequired("give a password"), Length(MIN_PASSWORD, 1024, f"use {MIN_PASSWORD} to 1024 characters")])


class RolesForm(FlaskForm):
    roles = SelectMultipleField("Roles", choices=list(ROLES), option_widget=CheckboxInput(),
                                widget=ListWidget(prefix_label=False))


class GrantForm(FlaskForm):
    project = SelectField("Project", validate_choice=True)
    access = SelectField("Access", choices=list(ACCESS), validate_choice=True)


class TierForm(FlaskForm):
    limit = IntegerField("Tier-access limit", validators=[
        NumberRange(0, 1_000_000, "give a whole number from 0 (off) to 1,000,000")])
    granularity = IntegerField("Granularity", default=10, validators=[
        NumberRange(1, 1_000_000, "give a whole number from 1 (no rounding) to 1,000,000")])
    fields = SelectField("Tier-visible fields (default: every enum facet; chosen: those ticked below)",
                         choices=["default", "chosen"], default="default", validate_choice=True)
    visible = SelectMultipleField("Fields", choices=[], option_widget=CheckboxInput(),
                                  widget=ListWidget(prefix_label=False), validate_choice=True)


class AlertsForm(FlaskForm):
    min_success_percent = IntegerField("Alert when a template's success rate is below (%; 0: off)", default=0,
                                       validators=[NumberRange(0, 100, "give a whole number from 0 (off) to 100")])
    over_last_runs = IntegerField("over its last runs", default=20, validators=[
        NumberRange(1, 100, "give a whole number from 1 to 100")])
    max_queued_seconds = IntegerField("Alert when a run has been queued longer than (seconds; 0: off)", default=0,
                                      validators=[NumberRange(0, None, "give 0 (off) or more seconds")])
    worker_silent_seconds = IntegerField("Alert when a worker has not claimed runs for (seconds; 0: off)", default=0,
                                         validators=[NumberRange(0, None, "give 0 (off) or more seconds")])


@bp.before_request
def admins_only():
    """Non-admins get a clear 403 page before any admin page is built."""
    if not getattr(current_user, "is_admin", False):  # anonymous users were sent to sign in already
        abort(403)


@bp.route("/")
def home():
    return redirect(url_for("admin.users"))


@bp.route("/users")
def users(error: str = "", status: int = 200):
    """Every account with its roles and grants, and the forms to change them."""
    accounts, projects = get_client().accounts(), project_ids()
    grant_form = GrantForm()
    grant_form.project.choices = projects
    return render_template("admin_users.html", accounts=accounts, projects=projects, add_form=AddUserForm(),
                           grant_form=grant_form, roles=ROLES, access=ACCESS, stop_offer=stop_offer(accounts),
                           message=" ".join(get_flashed_messages()), error=error), status


def stop_offer(accounts) -> str:
    """The user whose notebook server the page offers to stop (after a revoke; "" for none)."""
    name = request.args.get("stop", "")
    return name if any(a.user == name for a in accounts) else ""


@bp.route("/users", methods=("POST",))
def add_user():
    form = AddUserForm()
    if not form.validate_on_submit():
        return users(error=form_error(form), status=400)
    name = form.username.data.strip()
    if any(a.user == name for a in get_client().accounts()):
        return users(error=f"User name: {name!r} is taken; pick another, or change that account below", status=400)
    return act(lambda c: c.save_account(name, form.password.data, [form.role.data]),
               f"Added {name} ({form.role.data}).")


@bp.route("/users/<name>/password", methods=("POST",))
def reset_password(name: str):
    form = PasswordForm()
    if not form.validate_on_submit():
        return users(error=f"{name}: " + form_error(form), status=400)
    return save_changed(name, f"New password set for {name}; their earlier sessions stay valid until signed out.",
                        password=form.password.data)


@bp.route("/users/<name>/roles", methods=("POST",))
def set_roles(name: str):
    form = RolesForm()
    if not form.validate_on_submit():
        return users(error=f"{name}: " + form_error(form), status=400)
    return save_changed(name, f"{name} now has the roles: {', '.join(form.roles.data) or 'none'}.",
                        roles=form.roles.data)


@bp.route("/users/<name>/disabled", methods=("POST",))
def set_disabled(name: str):
    """Disable (every session and token stops at once) or enable an account."""
    disable = request.form.get("disabled") == "yes"
    return save_changed(name, f"{name} is {'disabled' if disable else 'enabled'}.", disabled=disable)


@bp.route("/users/<name>/sign-out", methods=("POST",))
def sign_out(name: str):
    return act(lambda c: c.sign_out_everywhere(name), f"{name} is signed out everywhere.")


@bp.route("/users/<name>/grants", methods=("POST",))
def grant(name: str):
    form = GrantForm()
    form.project.choices = project_ids()
    if not form.validate_on_submit():
        return users(error=f"{name}: " + form_error(form), status=400)
    return act(lambda c: c.set_grant(name, form.project.data, form.access.data),
               f"{name} may now {form.access.data} {form.project.data}.")


@bp.route("/users/<name>/grants/<project>/revoke", methods=("POST",))
def revoke(name: str, project: str):
    """Revoke, then offer to stop the user's notebook server: a running one keeps the project's
    folder it was started with until it stops (the next start shows only what the user may read)."""
    return act(lambda c: c.set_grant(name, project, ""), f"{name} no longer has access to {project}.", stop=name)


@bp.route("/users/<name>/server/stop", methods=("POST",))
def stop_server(name: str):
    """Stop the user's notebook server through the hub's REST API."""
    find_account(name)
    try:
        stopped = hub().stop(name)
    except HubError as error:
        return users(error=str(error), status=502)
    flash(f"{name}'s notebook server is stopping; it will show only what {name} may read when it starts again."
          if stopped else f"{name} has no notebook server running.")
    return redirect(url_for("admin.users"))


@bp.route("/tier-access", methods=("GET", "POST"))
def tier_access():
    """Show and set tiered access: the limit (0: off), the granularity and the tier-visible fields."""
    form, message, error, status = TierForm(), "", "", 200
    form.visible.choices = field_names()
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                chosen = form.visible.data if form.fields.data == "chosen" else None
                get_client().set_tier_access(form.limit.data, form.granularity.data, chosen)
                message = tier_message(form.limit.data, form.granularity.data)
            except ERRORS as exc:
                error, status = sentence(exc.message), 400
        else:
            error, status = form_error(form), 400
    current = get_client().tier_access()
    if request.method == "GET":
        form.limit.data, form.granularity.data = current.limit, current.granularity
        form.fields.data = "default" if current.default_fields else "chosen"
        form.visible.data = list(current.visible_fields)
    return render_template("admin_tier.html", form=form, current=current, message=message, error=error), status


def field_names() -> list[str]:
    """Every field of every document kind (records' fields as "path.field"), as checkbox choices."""
    fields = [f for kind in get_client().documents() for f in kind.fields]
    names = {f.name for f in fields if not f.nested} | {f"{f.name}.{sub}" for f in fields for sub in f.nested or []}
    return sorted(names)


def tier_message(limit: int, granularity: int) -> str:
    if not limit:
        return "Tiered access is off."
    return f"Tier-access limit set to {limit}, counts rounded down to multiples of {granularity}."


@bp.route("/triggers")
def triggers(error: str = "", status: int = 200):
    """The trigger rules: what each watches and launches, and whether it is on."""
    return render_template("admin_triggers.html", triggers=get_client().triggers(),
                           message=" ".join(get_flashed_messages()), error=error), status


@bp.route("/triggers/<name>/<state>", methods=("POST",))
def switch_trigger(name: str, state: str):
    if state not in ("on", "off"):
        abort(404)
    try:
        get_client().set_trigger_enabled(name, state == "on")
    except ERRORS as exc:
        return triggers(error=sentence(exc.message), status=400)
    flash(f"The trigger {name} is {'enabled' if state == 'on' else 'disabled'}.")
    return redirect(url_for("admin.triggers"))


@bp.route("/alerts", methods=("GET", "POST"))
def alerts():
    """Show and set the alert thresholds (metadata/alerts.py); crossing one tells every admin once."""
    form, message, error, status = AlertsForm(), "", "", 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                get_client().set_alert_settings(T.AlertSettings(
                    min_success_rate=form.min_success_percent.data / 100, over_last_runs=form.over_last_runs.data,
                    max_queued_seconds=form.max_queued_seconds.data, worker_silent_seconds=form.worker_silent_seconds.data))
                message = "The alert thresholds are saved."
            except ERRORS as exc:
                error, status = sentence(exc.message), 400
        else:
            error, status = form_error(form), 400
    if request.method == "GET":
        current = get_client().alert_settings()
        form.min_success_percent.data = round(current.min_success_rate * 100)
        form.over_last_runs.data = current.over_last_runs
        form.max_queued_seconds.data, form.worker_silent_seconds.data = current.max_queued_seconds, current.worker_silent_seconds
    return render_template("admin_alerts.html", form=form, message=message, error=error), status


@bp.route("/audit")
def audit():
    return audit_view.page()


@bp.route("/audit.<fmt>")
def audit_export(fmt: str):
    return audit_view.export(fmt)


def act(call, done: str, **query):
    """Make one service call; back to the users page (with query) saying what happened, in the
    service's words if refused."""
    try:
        call(get_client())
    except ERRORS as exc:
        return users(error=sentence(exc.message), status=400)
    except (TTransportException, OSError):
        return users(error=UNREACHABLE, status=503)
    flash(done)
    return redirect(url_for("admin.users", **query))  # so that reloading the page does not send the form again


def save_changed(name: str, done: str, **changes):
    """Save an account with some of password, roles, disabled changed and the rest as it is."""
    account = find_account(name)
    values = {"password": "", "roles": account.roles, "grants": account.grants, "disabled": account.disabled,
              **changes}
    return act(lambda c: c.save_account(name, **values), done)


def find_account(name: str):
    account = next((a for a in get_client().accounts() if a.user == name), None)
    if account is None:
        abort(404, f"There is no account {name!r}.")
    return account


def project_ids() -> list[str]:
    return sorted(node["submitter_id"] for node in get_client().nodes("project"))


def form_error(form: FlaskForm) -> str:
    """The form's problems as one sentence naming each field."""
    return "; ".join(f"{form[name].label.text}: {', '.join(problems)}" for name, problems in form.errors.items()
                     if name != "csrf_token") or "The form had expired; please try again."


@bp.errorhandler(403)
def forbidden(error):
    """403 for any admin page a non-admin opens: the way back is home (the admin pages are not theirs)."""
    message = "This page is for administrators. Ask one if you need something changed."
    return errors.page(errors.Problem("Administrators only", message, (errors.HOME,)), 403)


@bp.errorhandler(404)
def not_found(error):
    return errors.page(errors.not_found(request.path, errors.described(error)), 404)


def init_app(app) -> None:
    app.register_blueprint(bp)
    app.add_template_filter(audit_view.detail_fields, "audit_detail")
