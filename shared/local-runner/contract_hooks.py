"""Schemathesis hooks for `contract_check.py`: the project's own checks."""

import schemathesis

PROBLEM_JSON = "application/problem+json"
GATEWAY_401 = {"message": "Unauthorized"}


@schemathesis.check
def problem_json_errors(ctx, response, case):
    """Every 4xx is an RFC 9457 problem with a `type`, a `title` and its own status, except
    API Gateway's own 401, which is `{"message": "Unauthorized"}` as application/json."""
    status = response.status_code
    if not 400 <= status < 500:
        return None
    content_type = (response.headers.get("content-type") or [""])[0].split(";")[0].strip().lower()
    try:
        body = response.json()
    except Exception:
        raise AssertionError(f"{status} with a body that is not JSON ({content_type or 'no content type'})")
    if status == 401 and content_type == "application/json":
        if body != GATEWAY_401:
            raise AssertionError(f"a 401 as application/json must be API Gateway's {GATEWAY_401}, not {body}")
        return None
    if content_type != PROBLEM_JSON:
        raise AssertionError(f"{status} as {content_type or 'no content type'}, not {PROBLEM_JSON}")
    missing = [k for k in ("type", "title", "status") if k not in body]
    if missing:
        raise AssertionError(f"problem without {', '.join(missing)}: {body}")
    if body["status"] != status:
        raise AssertionError(f"problem status {body['status']} in a {status} answer")
    return None
