// Agents: the tenant's default agent and its named agents — the list (with the numbers each
// answers), create, edit (prompt, greeting, language, the STT / LLM / TTS vendor, model, voice
// and stored credential of each stage), delete — and "call it now", a test call of the agent
// from this browser (./test-call.js). Edits are JSON merge patches of the agent.

import { api, tenantPath } from '../api.js';
import { h, replace, form, table, toast, section, readOnlyNote, confirmButton, describe } from '../ui.js';
import { TestCall } from '../test-call.js';

const LLM = [['builtin', 'Builtin (offline echo)'], ['groq', 'Groq'], ['openai', 'OpenAI'], ['openai-compatible', 'OpenAI-compatible']];
const STT = [['builtin', 'Builtin (offline)'], ['deepgram', 'Deepgram'], ['openai', 'OpenAI'], ['openai-compatible', 'OpenAI-compatible']];
const TTS = [['builtin', 'Builtin (offline)'], ['openai', 'OpenAI'], ['openai-compatible', 'OpenAI-compatible'], ['deepgram', 'Deepgram'], ['elevenlabs', 'ElevenLabs']];
const DEFAULT = 'default';
const CHANNELS = [['dual', 'Two channels: caller left, agent right'], ['mixed', 'One channel: both mixed']];

const orNull = (value) => (value.trim() === '' ? null : value.trim());
const label = (options, value) => (options.find(([v]) => v === value) || [value, value])[1];

/** `/tenants/{slug}/agents` and `/tenants/{slug}/agents/{name}`. */
export async function page(ctx) {
  if (ctx.sub) return editor(ctx, ctx.sub);
  const base = `/tenants/${encodeURIComponent(ctx.slug)}/agents`;
  const list = h('div', { 'aria-live': 'polite' });
  ctx.main.append(h('h1', {}, 'Agents'),
    h('p', {}, 'Who answers your calls. A number answered by no named agent gets the default agent; so do numbers whose agent was deleted.'),
    section('Your agents', list));
  const [agents, numbers] = await Promise.all([
    api('GET', tenantPath(ctx.slug, '/agents?limit=100')),
    api('GET', tenantPath(ctx.slug, '/numbers')),
  ]);
  const answered = numbersByAgent(numbers.items || []);
  replace(list, table([
    ['Name', (a) => h('a', { href: `${base}/${encodeURIComponent(a.name)}` }, a.name)],
    ['Language', (a) => a.language],
    ['Speech-to-text', (a) => label(STT, a.stt.provider)],
    ['Language model', (a) => label(LLM, a.llm.provider)],
    ['Voice', (a) => [label(TTS, a.tts.provider), a.tts.voice ? ` (${a.tts.voice})` : '']],
    ['Answers', (a) => (answered.get(a.name) || []).join(', ') || (a.name === DEFAULT ? 'every other number' : '—')],
  ], agents.items, { caption: 'The default agent first, then the named agents' }));
  if (!ctx.can('admin')) {
    ctx.main.append(readOnlyNote(ctx.role));
    return;
  }
  ctx.main.append(section('New agent', form({
    className: 'inline',
    fields: [
      { name: 'name', label: 'Name', required: true, placeholder: 'support', autocomplete: 'off', help: 'Lower-case letters, digits and "-".' },
      { name: 'greeting', label: 'Greeting', placeholder: 'Hello! How can I help you today?' },
    ],
    submit: 'Create agent',
    async onSubmit(v) {
      const body = { name: v.name.trim() };
      if (v.greeting.trim()) body.greeting = v.greeting.trim();
      const agent = await api('POST', tenantPath(ctx.slug, '/agents'), body);
      toast(`Agent ${agent.name} created.`);
      ctx.navigate(`${base}/${encodeURIComponent(agent.name)}`);
    },
  })));
}

/**
 * The `recording` of an agent patch: absent stays absent while off (a merge patch with null),
 * an existing setting is kept and switched; an empty notice keeps the current one, or the
 * platform's default for a new setting.
 */
function recordingPatch(current, v) {
  if (!v.recordingEnabled && !current) return null;
  const patch = { enabled: v.recordingEnabled, channels: v.recordingChannels };
  if (v.recordingConsent.trim()) patch.consent = v.recordingConsent.trim();
  return patch;
}

/** E.164 numbers by the agent that answers them (numbers without one: the default agent). */
function numbersByAgent(numbers) {
  const map = new Map();
  for (const number of numbers) {
    if (!number.e164) continue;
    const name = number.agent || DEFAULT;
    map.set(name, [...(map.get(name) || []), number.e164]);
  }
  return map;
}

/** The credential choices of a stage whose vendor is `vendor`: the vendor's default, or one labelled key. */
function credentialOptions(credentials, vendor, current) {
  const options = [['', 'The vendor\'s default key']];
  for (const c of credentials) {
    if (c.provider === vendor) options.push([c.label, `${c.label}${c.isDefault ? ' (default)' : ''}`]);
  }
  if (current && !options.some(([value]) => value === current)) options.push([current, `${current} (no such key of this vendor)`]);
  return options;
}

async function editor(ctx, name) {
  const path = tenantPath(ctx.slug, `/agents/${encodeURIComponent(name)}`);
  const list = `/tenants/${encodeURIComponent(ctx.slug)}/agents`;
  const [agent, numbers, credentials] = await Promise.all([
    api('GET', path),
    api('GET', tenantPath(ctx.slug, '/numbers')),
    // Members read the stored keys' labels; viewers see only the label the agent names.
    ctx.can('member') ? api('GET', tenantPath(ctx.slug, '/credentials?limit=100')).then((r) => r.items || []) : Promise.resolve([]),
  ]);
  const recording = agent.recording || {};
  const llm = agent.llm || {};
  const stt = agent.stt || {};
  const tts = agent.tts || {};
  const editable = ctx.can('admin');
  ctx.main.append(h('p', {}, h('a', { href: list }, '← Agents')),
    h('h1', {}, name === DEFAULT ? 'Agent default' : `Agent ${name}`),
    h('p', {}, name === DEFAULT
      ? 'What callers hear on every number of this tenant that has no agent of its own. '
      : 'What callers hear on the numbers this agent answers. ',
    'Keys for the vendors are under ', h('a', { href: `/tenants/${encodeURIComponent(ctx.slug)}/provider-keys` }, 'Provider keys'), '.'));
  if (!editable) ctx.main.append(readOnlyNote(ctx.role));
  if (ctx.can('member')) ctx.main.append(callItNow(ctx, name));
  const conversation = form({
    disabled: !editable,
    fields: [
      { name: 'systemPrompt', label: 'Prompt', type: 'textarea', rows: 6, value: agent.systemPrompt, help: 'Instructions given to the language model at the start of every call.' },
      { name: 'greeting', label: 'Greeting', value: agent.greeting, help: 'First sentence spoken when a call is answered; empty waits for the caller.' },
      { name: 'language', label: 'Language', value: agent.language, help: 'BCP-47 tag, e.g. en-US.', required: true },
      { name: 'maxCallSeconds', label: 'Longest call (seconds)', type: 'number', min: 10, max: 14400, value: agent.maxCallSeconds },
      { name: 'transferNumber', label: 'Transfer number', value: agent.transferNumber || '', help: 'E.164; lets the agent transfer calls there.', placeholder: '+15551230000' },
      { name: 'sttProvider', apiField: 'stt.provider', label: 'Speech-to-text vendor', type: 'select', options: STT, value: stt.provider || 'builtin' },
      { name: 'sttModel', apiField: 'stt.model', label: 'Speech-to-text model', value: stt.model || '', placeholder: 'vendor default' },
      { name: 'sttCredential', apiField: 'stt.credential', label: 'Speech-to-text key', type: 'select', options: credentialOptions(credentials, stt.provider, stt.credential), value: stt.credential || '' },
      { name: 'sttBaseUrl', apiField: 'stt.baseUrl', label: 'Speech-to-text base URL', value: stt.baseUrl || '', help: 'Only for OpenAI-compatible servers.' },
      { name: 'llmProvider', apiField: 'llm.provider', label: 'Language model vendor', type: 'select', options: LLM, value: llm.provider || 'builtin' },
      { name: 'llmModel', apiField: 'llm.model', label: 'Language model', value: llm.model || '', placeholder: 'vendor default' },
      { name: 'llmCredential', apiField: 'llm.credential', label: 'Language model key', type: 'select', options: credentialOptions(credentials, llm.provider, llm.credential), value: llm.credential || '' },
      { name: 'llmBaseUrl', apiField: 'llm.baseUrl', label: 'Language model base URL', value: llm.baseUrl || '', help: 'Only for OpenAI-compatible servers.' },
      { name: 'ttsProvider', apiField: 'tts.provider', label: 'Text-to-speech vendor', type: 'select', options: TTS, value: tts.provider || 'builtin' },
      { name: 'ttsModel', apiField: 'tts.model', label: 'Text-to-speech model', value: tts.model || '', placeholder: 'vendor default' },
      { name: 'ttsVoice', apiField: 'tts.voice', label: 'Voice', value: tts.voice || '', placeholder: 'vendor default' },
      { name: 'ttsCredential', apiField: 'tts.credential', label: 'Text-to-speech key', type: 'select', options: credentialOptions(credentials, tts.provider, tts.credential), value: tts.credential || '' },
      { name: 'ttsBaseUrl', apiField: 'tts.baseUrl', label: 'Text-to-speech base URL', value: tts.baseUrl || '', help: 'Only for OpenAI-compatible servers.' },
      { name: 'recordingEnabled', apiField: 'recording', label: 'Record calls', type: 'checkbox', value: recording.enabled, help: 'Both sides of every call of this agent, kept as WAV in your S3-compatible storage (a provider key of vendor s3) or, standalone, in the data folder. Members listen on the call\'s page.' },
      { name: 'recordingChannels', apiField: 'recording.channels', label: 'Recording channels', type: 'select', options: CHANNELS, value: recording.channels || 'dual' },
      { name: 'recordingConsent', apiField: 'recording.consent', label: 'Recording notice', value: recording.consent || '', placeholder: 'This call is recorded.', help: 'What the agent says first on a recorded call.' },
    ],
    submit: 'Save agent',
    async onSubmit(v) {
      const seconds = v.maxCallSeconds.trim() === '' ? null : Number(v.maxCallSeconds);
      await api('PATCH', path, {
        systemPrompt: v.systemPrompt,
        greeting: v.greeting,
        language: v.language.trim(),
        maxCallSeconds: seconds,
        transferNumber: orNull(v.transferNumber),
        llm: { provider: v.llmProvider, model: orNull(v.llmModel), baseUrl: orNull(v.llmBaseUrl), credential: orNull(v.llmCredential) },
        stt: { provider: v.sttProvider, model: orNull(v.sttModel), baseUrl: orNull(v.sttBaseUrl), credential: orNull(v.sttCredential) },
        tts: { provider: v.ttsProvider, model: orNull(v.ttsModel), voice: orNull(v.ttsVoice), baseUrl: orNull(v.ttsBaseUrl), credential: orNull(v.ttsCredential) },
        recording: recordingPatch(agent.recording, v),
      });
      toast('Agent saved. New calls use it.');
    },
  });
  // A stage's key list follows its vendor.
  for (const stage of ['stt', 'llm', 'tts']) {
    const vendor = conversation.inputs.get(`${stage}Provider`).input;
    const key = conversation.inputs.get(`${stage}Credential`).input;
    vendor.addEventListener('change', () => {
      replace(key, credentialOptions(credentials, vendor.value, null).map(([value, text]) => h('option', { value }, text)));
    });
  }
  ctx.main.append(section('Conversation', conversation));
  const answers = numbersByAgent(numbers.items || []).get(name) || [];
  ctx.main.append(section('Numbers', h('p', {}, answers.length
    ? `Answers ${answers.join(', ')}.`
    : name === DEFAULT ? 'Answers every number without an agent of its own.' : 'Answers no number yet. Choose it when you buy a number.')));
  if (editable && name !== DEFAULT) {
    ctx.main.append(section('Delete', h('p', {}, 'Numbers and campaigns that name this agent get the default agent.'),
      confirmButton('Delete agent', `Delete ${name}?`, async () => {
        await api('DELETE', path);
        toast(`Agent ${name} deleted.`);
        ctx.navigate(list);
      })));
  }
}

/** The "Call it now" card: start, live status and transcript, hang up. */
function callItNow(ctx, name) {
  const status = h('p', { id: 'test-call-status', role: 'status' }, 'Talk to this agent from your browser, with your microphone and speakers. The call is billed like any call.');
  const transcript = h('ol', { class: 'transcript', id: 'test-call-transcript', 'aria-live': 'polite' });
  const link = h('p');
  const hangUp = h('button', { type: 'button', class: 'danger', hidden: true }, 'Hang up');
  const start = h('button', { type: 'button', class: 'primary' }, 'Call it now');
  let call = null;
  start.addEventListener('click', async () => {
    start.disabled = true;
    replace(transcript);
    replace(link);
    call = new TestCall(ctx.slug, name, (state) => {
      status.textContent = state.message;
      status.className = state.phase === 'failed' ? 'error' : '';
      if (state.callId && !link.firstChild) {
        link.append(h('a', { href: `/tenants/${encodeURIComponent(ctx.slug)}/calls/${encodeURIComponent(state.callId)}` }, 'Open this call'));
      }
      replace(transcript, state.turns.map((t) => h('li', { class: `turn ${t.role}` },
        h('span', { class: 'speaker' }, t.role === 'agent' ? 'Agent' : t.role === 'caller' ? 'You' : t.role), ' ',
        h('span', { class: 'said' }, t.text))));
      const live = state.phase === 'starting' || state.phase === 'connected';
      hangUp.hidden = !live;
      start.disabled = live;
    });
    try {
      await call.start();
      if (ctx.current()) hangUp.focus();
    } catch (error) {
      call.release();
      status.className = 'error';
      status.textContent = error && error.name === 'NotAllowedError'
        ? 'The browser did not allow the microphone: allow it for this site and try again.'
        : describe(error);
      start.disabled = false;
      hangUp.hidden = true;
    }
  });
  hangUp.addEventListener('click', () => { if (call) call.hangUp(); });
  // Leaving the page hangs up (the console changes pages without unloading).
  const watch = setInterval(() => {
    if (ctx.current()) return;
    clearInterval(watch);
    if (call) call.hangUp();
  }, 500);
  return section('Call it now', status, h('div', { class: 'row' }, start, hangUp), link, transcript);
}
