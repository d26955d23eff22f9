#!/usr/bin/env bash
# usage: bin/smoke.sh [GATEWAY_URL]   (npm run smoke)
#
# Runs the JWT flows through the gateway of a running formation (npm start): registration, login,
# every role's flow, refresh, the key set, a table of refused tokens, and the round robin. Prints one
# line per check, then "N passed, N failed". Exits 1 if any check failed.
#
#   GATEWAY_URL   default $GATEWAY_URL, else http://127.0.0.1:$((BASE_PORT + 500)) (BASE_PORT=5000)
#
# Also uses, on the same host: an enrollment instance (BASE_PORT + 100; with bin/hosts.sh, h1's,
# inside its network namespace HOSTS_PREFIX-h1), the gateway's stats page (the gateway's port + 1),
# the development accounts (password "dev-password") and, to sign an expired token,
# var/keys/jwks-private.json. Needs curl and jq.
set -uo pipefail
source "$(dirname "$0")/cli.sh"
parse_args '' 0 1 "$@" || exit "$exit_status"
cd "$(dirname "$0")/.."

BASE_PORT=${BASE_PORT:-5000}
GATEWAY=${operands[0]:-${GATEWAY_URL:-http://127.0.0.1:$((BASE_PORT + 500))}}
GATEWAY=${GATEWAY%/}
STATS="${GATEWAY%:*}:$((${GATEWAY##*:} + 1))/;csv"
INSTANCE=${ENROLLMENT_URL:-http://127.0.0.1:$((BASE_PORT + 100))}
DEV_PASSWORD=dev-password
passed=0
failed=0
# With bin/hosts.sh the instances listen inside the hosts' network namespaces, not here.
on_instance_host() {
  local netns=/run/netns/${HOSTS_PREFIX:-egw}-h1
  if curl -s "$STATS" | grep -q '^enrollment,h1e,' && [[ -e $netns ]]; then nsenter --net="$netns" "$@"; else "$@"; fi
}

# request METHOD PATH [TOKEN] [JSON] [extra curl args...]: sets STATUS and BODY.
request() {
  local method=$1 url=$2 token=${3:-} data=${4:-}
  shift 4 2>/dev/null || shift $#
  local args=(-s -o /tmp/smoke.$$ -w '%{http_code}' -X "$method" "$@")
  [[ -n $token ]] && args+=(-H "Authorization: Bearer $token")
  [[ -n $data ]] && args+=(-H 'Content-Type: application/json' --data "$data")
  [[ $url == http* ]] || url=$GATEWAY$url
  STATUS=$(if [[ $url == "$INSTANCE"* ]]; then on_instance_host curl "${args[@]}" "$url"; else curl "${args[@]}" "$url"; fi)
  BODY=$(cat /tmp/smoke.$$ 2>/dev/null)
}
trap 'rm -f /tmp/smoke.$$' EXIT

# check "WHAT" EXPECTED_STATUS [JQ_TEST]: the last request's status, and a jq test on its body.
check() {
  local what=$1 expected=$2 test=${3:-}
  if [[ $STATUS == "$expected" ]] && { [[ -z $test ]] || jq -e "$test" <<<"$BODY" >/dev/null 2>&1; }; then
    printf 'ok    %-68s %s\n' "$what" "$STATUS"
    passed=$((passed + 1))
  else
    printf 'FAIL  %-68s %s (expected %s%s): %s\n' "$what" "$STATUS" "$expected" "${test:+, $test}" "${BODY:0:300}"
    failed=$((failed + 1))
  fi
}

login() { # login USER [PASSWORD]: prints the access token
  request POST /login '' "{\"username\":\"$1\",\"password\":\"${2:-$DEV_PASSWORD}\"}"
  jq -r '.access_token // empty' <<<"$BODY"
}

echo "smoke: gateway $GATEWAY"
request GET /health
check "the gateway answers /health" 200 '.status == "ok"'

# ---- a fresh student registers and logs in through the gateway ----
student="smoke$(date +%s)$RANDOM"
request POST /users '' "{\"username\":\"$student\",\"password\":\"smoke password\",\"roles\":[\"Student\"]}"
check "POST /users registers the student $student" 201 ".username == \"$student\""
request POST /login '' "{\"username\":\"$student\",\"password\":\"smoke password\"}"
check "POST /login gives signed access and refresh tokens" 200 '(.access_token | split(".") | length == 3) and (.refresh_token | length > 0) and (.exp > now)'
token=$(jq -r .access_token <<<"$BODY")
refresh=$(jq -r .refresh_token <<<"$BODY")
kid=$(cut -d. -f1 <<<"$token" | tr '_-' '/+' | base64 -d 2>/dev/null | jq -r .kid 2>/dev/null)
request POST /login '' "{\"username\":\"$student\",\"password\":\"wrong password\"}"
check "POST /login with a wrong password" 401 '.title == "Unauthorized"'

request GET /.well-known/jwks.json
check "GET /.well-known/jwks.json publishes the key that signed the token" 200 "any(.keys[]; .kid == \"$kid\" and .alg == \"RS256\") and all(.keys[]; has(\"d\") | not)"

# ---- the student: catalogue, enroll, waitlist, drop ----
request GET /classes "$token"
check "GET /classes (Student)" 200 '.classes | length > 0'
catalogue=$BODY
# A section taught by one of the seeded instructors, whose password the smoke test knows.
open_section=$(jq '[.classes[].sections[] | select(.seats_left > 0 and .waitlist_length == 0 and (.instructor | startswith("prof.")))][0].id' <<<"$catalogue")
full_section=$(jq '[.classes[].sections[] | select(.seats_left == 0)] | min_by(.waitlist_length).id' <<<"$catalogue")
teacher=$(jq -r "[.classes[].sections[] | select(.id == $open_section)][0].instructor" <<<"$catalogue")
request GET "/sections/$open_section" "$token"
check "GET /sections/$open_section" 200 ".id == $open_section"
request POST /me/enrollments "$token" "{\"section_id\":$open_section}"
check "POST /me/enrollments in open section $open_section" 201 '.status == "enrolled"'
request GET /me/enrollments "$token"
check "GET /me/enrollments lists it" 200 "any(.enrollments[]; .section_id == $open_section)"
request POST /me/enrollments "$token" "{\"section_id\":$full_section}"
check "POST /me/enrollments in full section $full_section: waitlisted" 202 '.status == "waitlisted"'
request GET /me/waitlist "$token"
check "GET /me/waitlist shows the position" 200 "any(.waitlist[]; .section_id == $full_section and .position >= 1)"
request DELETE "/me/waitlist/$full_section" "$token"
check "DELETE /me/waitlist/$full_section" 204
request DELETE "/me/enrollments/$open_section" "$token"
check "DELETE /me/enrollments/$open_section (drop)" 204
request POST /me/enrollments "$token" "{\"section_id\":$open_section}"
check "POST /me/enrollments again, for the instructor to drop" 201

# ---- the instructor of that section ----
teacher_token=$(login "$teacher")
request GET /me/sections "$teacher_token"
check "GET /me/sections ($teacher)" 200 "any(.sections[]; .id == $open_section)"
for list in students waitlist dropped; do
  request GET "/sections/$open_section/$list" "$teacher_token"
  check "GET /sections/$open_section/$list ($teacher)" 200 ".section_id == $open_section"
done
request DELETE "/sections/$open_section/students/$student" "$teacher_token"
check "DELETE /sections/$open_section/students/$student (administrative drop)" 204
request GET "/sections/$open_section/dropped" "$teacher_token"
check "the drop is on record as administrative" 200 "any(.dropped[]; .username == \"$student\" and .reason == \"administrative\")"

# ---- the registrar ----
registrar_token=$(login registrar)
code="S$((RANDOM % 9000 + 1000))$((RANDOM % 90 + 10))"
request POST /classes "$registrar_token" "{\"department\":\"SMOKE\",\"course_code\":\"$code\",\"title\":\"Smoke testing\"}"
check "POST /classes SMOKE $code" 201 '.id > 0'
class_id=$(jq .id <<<"$BODY")
request POST /sections "$registrar_token" "{\"class_id\":$class_id,\"section_number\":1,\"capacity\":2,\"instructor\":\"$teacher\"}"
check "POST /sections in class $class_id" 201 '.capacity == 2'
section_id=$(jq .id <<<"$BODY")
request PUT "/sections/$section_id/instructor" "$registrar_token" '{"instructor":"prof.chen"}'
check "PUT /sections/$section_id/instructor" 200 '.instructor == "prof.chen"'
request PUT /auto-enrollment "$registrar_token" '{"frozen":true}'
check "PUT /auto-enrollment frozen" 200 '.frozen == true'
request GET /auto-enrollment "$token"
check "GET /auto-enrollment (Student) sees it frozen" 200 '.frozen == true'
request PUT /auto-enrollment "$registrar_token" '{"frozen":false}'
check "PUT /auto-enrollment unfrozen" 200 '.frozen == false'
request DELETE "/sections/$section_id" "$registrar_token"
check "DELETE /sections/$section_id" 204

# ---- refresh (each refresh token works once), logout, password change ----
request POST /refresh "$refresh"
check "POST /refresh with the refresh token" 200 '.access_token | length > 0'
refreshed=$BODY
request GET /me/enrollments "$(jq -r .access_token <<<"$refreshed")"
check "the refreshed access token works" 200
request POST /refresh "$refresh"
check "refused: the same refresh token a second time (theft)" 401 '.detail | test("used before")'
request POST /refresh "$(jq -r .refresh_token <<<"$refreshed")"
check "refused: the newer refresh token too: the whole login is revoked" 401 '.detail | test("revoked")'
request POST /login '' "{\"username\":\"$student\",\"password\":\"smoke password\"}"
second_login=$BODY
request POST /logout "$(jq -r .refresh_token <<<"$second_login")"
check "POST /logout" 204
request POST /refresh "$(jq -r .refresh_token <<<"$second_login")"
check "refused: a refresh token after logout" 401
request PUT "/users/$student/password" "$token" '{"current_password":"wrong password","new_password":"another password"}'
check "refused: a password change with the wrong current password" 403
request PUT "/users/$student/password" "$token" '{"current_password":"smoke password","new_password":"another password"}'
check "PUT /users/$student/password" 204
request POST /login '' "{\"username\":\"$student\",\"password\":\"another password\"}"
check "POST /login with the new password" 200

# ---- refusals ----
forge() { bin/node bin/forge-token.ts "$1" "$token"; }
request GET /classes
check "refused: no token" 401 '.title == "Unauthorized"'
request GET /classes "$(forge expired)"
check "refused: expired token" 401 '.detail | test("expired")'
request GET /classes "$(forge wrong-key)"
check "refused: signed with another key under our kid" 401 '.detail | test("signature")'
request GET /classes "$(forge alg-none)"
check "refused: alg none" 401 '.detail | test("RS256")'
request POST /classes "$(forge hs256-public-key)" '{"department":"HACK","course_code":"1","title":"x"}'
check "refused: HS256 keyed with the public key" 401 '.detail | test("RS256")'
request POST /classes "$(forge tampered-roles)" '{"department":"HACK","course_code":"1","title":"x"}'
check "refused: roles changed to Registrar after signing" 401 '.detail | test("signature")'
request GET /classes "$refresh"
check "refused: the refresh token as an access token" 401 '.detail | test("aud")'
request POST /classes "$token" '{"department":"HACK","course_code":"1","title":"x"}'
check "refused: POST /classes with the Student role" 403 '.title == "Forbidden"'
request GET //me/sections "$token" '' --path-as-is
check "refused: a doubled slash is no way around a role rule" 404
request GET /ME/SECTIONS/ "$token" '' --path-as-is
check "refused: nor are capitals and a trailing slash" 403
request POST /classes '' '{"department":"HACK","course_code":"1","title":"x"}' -H 'X-Auth-User: registrar' -H 'X-Auth-Role: Registrar'
check "refused: forged identity headers at the gateway, no token" 401
request POST "$INSTANCE/classes" '' '{"department":"HACK","course_code":"1","title":"x"}' -H 'X-Auth-User: registrar' -H 'X-Auth-Role: Registrar'
check "refused: forged identity headers straight to an instance" 401
request POST "$INSTANCE/classes" "$token" '{"department":"HACK","course_code":"1","title":"x"}' -H 'X-Auth-User: registrar' -H 'X-Auth-Role: Registrar'
check "refused: a Student token with forged headers straight to an instance" 403

# ---- round robin: 30 requests, 10 to each instance, counted by the gateway ----
# By someone who has written nothing: with bin/hosts.sh a writer's reads go to the primary's host
# for a few seconds (so that they read their own write).
token=$(login student120)
served() { curl -s "$STATS" | awk -F, '$1 == "enrollment" && $2 !~ /^(FRONTEND|BACKEND)$/ { printf "%s=%s ", $2, $8 }'; }
before=$(served)
for _ in $(seq 30); do curl -s -o /dev/null -H "Authorization: Bearer $token" "$GATEWAY/classes"; done
after=$(served)
spread=""
servers=$(grep -oE '[a-z0-9]+=' <<<"$before" | tr -d =)
for server in $servers; do
  b=$(grep -oE "$server=[0-9]+" <<<"$before" | cut -d= -f2)
  a=$(grep -oE "$server=[0-9]+" <<<"$after" | cut -d= -f2)
  spread+="$server=$((${a:-0} - ${b:-0})) "
done
STATUS=${spread% }
BODY="stats: $STATS"
check "30 GET /classes spread over the instances" "$(for server in $servers; do printf '%s=10 ' "$server"; done | sed 's/ $//')"

echo "smoke: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
