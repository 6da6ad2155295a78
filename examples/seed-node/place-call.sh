#!/bin/sh
# The seed page's curl, as printed; only the base URLs differ (SAUTIKIT_API_URL, APP_URL).
set -eu
# Place an outbound call; action_url will return a Dial with record enabled
curl -X POST "$SAUTIKIT_API_URL/v1/calls" \
  -H "Authorization: Bearer $SAUTIKIT_API_KEY" \
  -H "Content-Type: application/json" \
  -d '{
    "to":         "+254722999000",
    "from":       "+254700000001",
    "action_url": "'"$APP_URL"'/calls/connect-and-record"
  }'
