#!/usr/bin/env bash
# cron-apply.sh JOB.toml [TENANT] -- apply one job unattended, then alert on its exit code.
#
# Run from cron (see docs/recipes.md). The alert carries what THIS run said: the error line
# (the last line bulkshare wrote on stderr), and for a tripped max_changes guard the plan's
# counts; never an earlier night's output. Settings, from the environment:
#   BULKSHARE          the bulkshare command            (default: bulkshare on PATH)
#   BULKSHARE_CONFIG   the config file                  (read by bulkshare itself)
#   BULKSHARE_TENANT   the tenant, if not given as $2   (default: prod)
#   BULKSHARE_SECRETS  a file to source for the secret variables (optional, mode 600)
#   BULKSHARE_LOG_DIR  where JOB.out (stdout) and JOB.log (stderr) grow (default /var/log/bulkshare)
#   BULKSHARE_ALERT    a command given the subject as $1 and the body on stdin
#                      (default: mail -s SUBJECT "$BULKSHARE_ALERT_TO")
# Exits with bulkshare's exit code. An interrupted run (130) is not resumed here: the alert
# says how.
set -u -o pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: cron-apply.sh JOB.toml [TENANT]" >&2
    exit 2
fi
job=$1
tenant=${2:-${BULKSHARE_TENANT:-prod}}
bulkshare=${BULKSHARE:-bulkshare}
name=$(basename "$job" .toml)
logdir=${BULKSHARE_LOG_DIR:-/var/log/bulkshare}
log=$logdir/$name

if [ -z "${BULKSHARE_ALERT:-}" ] && [ -z "${BULKSHARE_ALERT_TO:-}" ]; then
    echo "cron-apply.sh: set BULKSHARE_ALERT_TO (or BULKSHARE_ALERT): alerts would go nowhere" >&2
    exit 2
fi
if [ -n "${BULKSHARE_SECRETS:-}" ]; then
    # shellcheck disable=SC1090  # the secrets file is the admin's own
    . "$BULKSHARE_SECRETS" || exit 2
fi
mkdir -p "$logdir" || exit 2
work=$(mktemp -d) || exit 2
trap 'rm -rf "$work"' EXIT

# The alert's body is built from this run's own output only (kept apart in $work), while the
# log files keep every night's.
alert() { # alert SUBJECT < BODY
    if [ -n "${BULKSHARE_ALERT:-}" ]; then
        # unquoted on purpose: the setting may be a command with its own arguments
        $BULKSHARE_ALERT "bulkshare $name on $tenant: $1"
    else
        mail -s "bulkshare $name on $tenant: $1" "$BULKSHARE_ALERT_TO"
    fi
}

# run CMD ARGS...: bulkshare with JSON stderr; this run's stdout/stderr kept, and logged
run() {
    "$bulkshare" "$@" --log-format json >"$work/out" 2>"$work/err"
    local code=$?
    cat "$work/out" >>"$log.out"
    cat "$work/err" >>"$log.log"
    return $code
}

# The last stderr line is bulkshare's one error line; in JSON, its message.
error_line() {
    local last
    last=$(tail -n 1 "$work/err")
    [ -n "$last" ] || { echo "(nothing on stderr)"; return; }
    printf '%s\n' "$last" | jq -er '.message // empty' 2>/dev/null || printf '%s\n' "$last"
}

# The counts of the plan the guard refused: a dry run, so nothing is written.
guard_counts() {
    if "$bulkshare" plan "$job" --tenant "$tenant" -q --format json >"$work/plan.json" 2>"$work/plan.err"; then
        jq -r '"planned changes by action: "
               + ([.counts | to_entries[] | "\(.key) \(.value)"] | join(", "))
               + "\ntasks read: \(.scanned); max_changes: \(.job.max_changes)"' "$work/plan.json"
    else
        echo "(the counts could not be read: $(tail -n 1 "$work/plan.err"))"
    fi
}

run_id() { # this run's id: from its summary ("run ID: job ..."), or its error line's resume
    { sed -n 's/^run \([^ :]*\): .*/\1/p' "$work/out"
      error_line | sed -n 's/.*bulkshare resume \([^ `]*\).*/\1/p'; } | head -n 1
}

report() { # the body of an alert: the error line, extra lines, this run's stdout
    echo "exit $code: $(error_line)"
    [ $# -eq 0 ] || printf '%s\n' "$@"
    if [ -s "$work/out" ]; then
        echo
        cat "$work/out"
    fi
}

run apply "$job" --tenant "$tenant" --yes -q
code=$?
case $code in
    0) ;;
    1)  id=$(run_id)
        [ -z "$id" ] || "$bulkshare" show "$id" >"$work/show" 2>&1
        report "$(cat "$work/show" 2>/dev/null)" | alert "some changes failed or conflicted" ;;
    2)  report | alert "refused: config, job file, secret or local file (nothing sent)" ;;
    3)  if error_line | grep -q "max_changes"; then
            report "$(guard_counts)" | alert "max_changes guard tripped; nothing was changed"
        else
            report | alert "refused (lock held by an earlier run?); nothing was changed"
        fi ;;
    4)  report | alert "tenant unreachable or credentials refused; nothing changed" ;;
    130) # stopped on purpose (a shutdown, a timeout): not restarted behind anyone's back
        report "continue it with: bulkshare resume $(run_id)  (or let the next run plan afresh)" \
            | alert "interrupted; the run is resumable" ;;
    *)  report | alert "unexpected exit $code" ;;
esac
exit "$code"
