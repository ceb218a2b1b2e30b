-- The training load of the profile-guided build (deploy/pgo/build.sh): wrk sends this mix to a
-- gateway configured as the sandbox (config/default.toml: Meta, Kaleyra's three pods and the
-- generic API "legacy", all simulated on loopback).
--
-- The mix is what a gateway in production does, in rough proportions: every message type of
-- the README, on each provider, mostly synchronous and keyless, some with a unique
-- Idempotency-Key, some queued (Prefer: respond-async) or in a batch, dry runs, invalid bodies
-- (400/422), reads of a message, unknown message ids, and status webhooks from Kaleyra and the
-- generic API. A path the training never runs is laid out by the compiler as cold code; that
-- is why the mix is broad rather than the benchmark's one text message.

local auth = "Bearer sandbox-token"
local to = '"to": "+14085551234", '

local bodies = {
  '{' .. to .. '"type": "text", "text": {"body": "Your order shipped", "preview_url": false}, "refs": {"ref": "customer1", "ref1": "orders"}}',
  '{' .. to .. '"type": "image", "image": {"link": "https://example.com/a.png", "caption": "Receipt"}}',
  '{' .. to .. '"type": "document", "document": {"id": "1013859600285441", "filename": "invoice.pdf"}}',
  '{' .. to .. '"type": "location", "location": {"latitude": 37.758056, "longitude": -122.425332, "name": "Facebook HQ"}}',
  '{' .. to .. '"type": "contacts", "contacts": [{"name": {"formatted_name": "John Smith", "first_name": "John"}, "phones": [{"phone": "+1 (940) 555-1234", "type": "HOME"}]}]}',
  '{' .. to .. '"type": "reaction", "reaction": {"message_id": "wamid.HBgL", "emoji": "👍"}}',
  '{' .. to .. '"type": "text", "text": {"body": "Yes!"}, "context": {"message_id": "wamid.HBgL"}}',
  '{' .. to .. '"type": "interactive", "interactive": {"type": "button", "body": {"text": "Confirm?"}, "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes"}}, {"type": "reply", "reply": {"id": "no", "title": "No"}}]}}}',
  '{' .. to .. '"type": "interactive", "interactive": {"type": "list", "body": {"text": "Pick a slot"}, "action": {"button": "Slots", "sections": [{"title": "Today", "rows": [{"id": "t1", "title": "10:00"}]}]}}}',
  '{' .. to .. '"type": "interactive", "interactive": {"type": "cta_url", "body": {"text": "Tap to see dates."}, "action": {"name": "cta_url", "parameters": {"display_text": "See Dates", "url": "https://www.luckyshrub.com"}}}}',
  '{' .. to .. '"provider": "meta", "type": "interactive", "interactive": {"type": "voice_call", "body": {"text": "Call us on WhatsApp now"}, "action": {"name": "voice_call", "parameters": {"display_text": "Call on WhatsApp", "ttl_minutes": 100, "payload": "support_v2"}}}}',
  '{' .. to .. '"type": "template", "template": {"name": "wa_voice_call", "language": {"code": "en"}, "components": [{"type": "button", "sub_type": "voice_call", "parameters": [{"type": "ttl_minutes", "ttl_minutes": 100}, {"type": "payload", "payload": "campaign_q4"}]}]}}',
}

-- Each body as written (false: the sender's route, Kaleyra first), then pinned to each provider.
local providers = { false, "kaleyra", "meta", "legacy" }

local invalid = {
  '{' .. to .. '"type": "text"}',
  '{"to": "12", "type": "text", "text": {"body": "hi"}}',
  '{' .. to .. '"type": "image", "image": {"caption": "no media"}}',
  'not json',
}

local function pinned(body, provider)
  if not provider or body:find('"provider"', 1, true) then
    return body
  end
  return '{"provider": "' .. provider .. '", ' .. body:sub(2)
end

local function json_headers(extra)
  local headers = { ["Content-Type"] = "application/json", ["Authorization"] = auth }
  for k, v in pairs(extra or {}) do
    headers[k] = v
  end
  return headers
end

local n = 0
local threads = 0
-- Keys are unique to this run (a database trained before keeps its keys for 24 hours) and to
-- each thread: `prefix` is a global of each thread's Lua state.
local run = tostring(os.time())

setup = function(thread)
  thread:set("prefix", "train-" .. run .. "-" .. threads .. "-")
  threads = threads + 1
end

-- The ids of the last message sent, for the reads and webhooks that follow.
local last_id = nil
local last_provider_id = nil

request = function()
  n = n + 1
  -- Twenty kinds of request in turn (`slot`); each round through them moves every kind on to
  -- the next body, provider and invalid body, so that every kind meets every one.
  local slot = n % 20
  local round = math.floor(n / 20)
  local body = bodies[((round + slot) % #bodies) + 1]
  local provider = providers[(math.floor(round / #bodies) % #providers) + 1]
  if slot < 10 then
    return wrk.format("POST", "/v1/messages", json_headers(), pinned(body, provider))
  elseif slot < 12 then
    local key = prefix .. n
    return wrk.format("POST", "/v1/messages", json_headers({ ["Idempotency-Key"] = key }), pinned(body, provider))
  elseif slot == 12 then
    return wrk.format("POST", "/v1/messages", json_headers({ ["Prefer"] = "respond-async" }), pinned(body, provider))
  elseif slot == 13 then
    return wrk.format("POST", "/v1/messages/batch", json_headers(),
      '{"messages": [' .. pinned(body, provider) .. ', ' .. bodies[1] .. ']}')
  elseif slot == 14 then
    return wrk.format("POST", "/v1/messages?dry_run=true", json_headers(), pinned(body, provider))
  elseif slot == 15 then
    return wrk.format("POST", "/v1/messages", json_headers(), invalid[(round % #invalid) + 1])
  elseif slot == 16 then
    return wrk.format("GET", "/v1/messages/" .. (last_id or "01JD3W6Q8S3M1V2H7KX2F5N9ZC"), json_headers())
  elseif slot == 17 then
    local statuses = { "sent", "delivered", "read" }
    return wrk.format("POST", "/webhooks/legacy", { ["Content-Type"] = "application/json",
      ["X-Callback-Token"] = "sim-generic-callback-token" },
      '{"externalId": "' .. (last_id or "01JD3W6Q8S3M1V2H7KX2F5N9ZC") .. '", "status": "'
      .. statuses[(round % #statuses) + 1] .. '"}')
  elseif slot == 18 then
    local id = last_provider_id or (prefix .. n)
    return wrk.format("POST", "/webhooks/kaleyra", { ["Content-Type"] = "application/json",
      ["X-Callback-Token"] = "sim-kaleyra-callback-token" },
      '{"meta_object": {"field": "messages", "value": {"statuses": [{"id": "other-id", "status": "delivered", '
      .. '"timestamp": "1795255200", "recipient_id": "14085551234"}]}}, '
      .. '"extra_info": {"message_id": "' .. id .. '", "ref": "customer1"}, '
      .. '"status": "DELIVERED", "message_id": "' .. id .. '"}')
  else
    return wrk.format("GET", "/metrics", {})
  end
end

-- The ids of the last message a provider took, for the reads and webhooks that follow.
response = function(status, headers, body)
  if status == 202 then
    last_id = body:match('"id":"(%w+)"') or last_id
    last_provider_id = body:match('"provider_message_id":"([^"]+)"') or last_provider_id
  end
end

done = function(summary)
  io.write(string.format("TRAIN requests=%d errors=%d\n", summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
