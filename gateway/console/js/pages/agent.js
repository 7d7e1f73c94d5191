// The tenant's default agent: prompt, greeting, language, and the STT / LLM / TTS vendors
// with their models and voice. Saved as a JSON merge patch of `agent` (empty means default).

import { api, tenantPath } from '../api.js';
import { h, form, toast, section, readOnlyNote } from '../ui.js';

const LLM = [['builtin', 'Builtin (offline echo)'], ['groq', 'Groq'], ['openai', 'OpenAI'], ['openai-compatible', 'OpenAI-compatible']];
const STT = [['builtin', 'Builtin (offline)'], ['deepgram', 'Deepgram'], ['openai', 'OpenAI'], ['openai-compatible', 'OpenAI-compatible']];
const TTS = [['builtin', 'Builtin (offline)'], ['openai', 'OpenAI'], ['openai-compatible', 'OpenAI-compatible'], ['deepgram', 'Deepgram'], ['elevenlabs', 'ElevenLabs']];

const orNull = (value) => (value.trim() === '' ? null : value.trim());

/** `/tenants/{slug}/agent`. */
export async function page(ctx) {
  const tenant = await api('GET', tenantPath(ctx.slug));
  const agent = tenant.agent || {};
  const llm = agent.llm || {};
  const stt = agent.stt || {};
  const tts = agent.tts || {};
  const editable = ctx.can('admin');
  ctx.main.append(h('h1', {}, 'Agent'),
    h('p', {}, 'What callers hear on every number of this tenant that has no agent of its own. Provider keys for the vendors are under ',
      h('a', { href: `/tenants/${encodeURIComponent(ctx.slug)}/provider-keys` }, 'Provider keys'), '.'));
  if (!editable) ctx.main.append(readOnlyNote(ctx.role));
  ctx.main.append(section('Conversation', form({
    disabled: !editable,
    fields: [
      { name: 'systemPrompt', label: 'Prompt', type: 'textarea', rows: 6, value: agent.systemPrompt, help: 'Instructions given to the language model at the start of every call.' },
      { name: 'greeting', label: 'Greeting', value: agent.greeting, help: 'First sentence spoken when a call is answered; empty waits for the caller.' },
      { name: 'language', label: 'Language', value: agent.language, help: 'BCP-47 tag, e.g. en-US.', required: true },
      { name: 'maxCallSeconds', label: 'Longest call (seconds)', type: 'number', min: 10, max: 14400, value: agent.maxCallSeconds },
      { name: 'transferNumber', label: 'Transfer number', value: agent.transferNumber || '', help: 'E.164; lets the agent transfer calls there.', placeholder: '+15551230000' },
      { name: 'llmProvider', apiField: 'llm.provider', label: 'Language model vendor', type: 'select', options: LLM, value: llm.provider || 'builtin' },
      { name: 'llmModel', apiField: 'llm.model', label: 'Language model', value: llm.model || '', placeholder: 'vendor default' },
      { name: 'llmBaseUrl', apiField: 'llm.baseUrl', label: 'Language model base URL', value: llm.baseUrl || '', help: 'Only for OpenAI-compatible servers.' },
      { name: 'sttProvider', apiField: 'stt.provider', label: 'Speech-to-text vendor', type: 'select', options: STT, value: stt.provider || 'builtin' },
      { name: 'sttModel', apiField: 'stt.model', label: 'Speech-to-text model', value: stt.model || '', placeholder: 'vendor default' },
      { name: 'sttBaseUrl', apiField: 'stt.baseUrl', label: 'Speech-to-text base URL', value: stt.baseUrl || '' },
      { name: 'ttsProvider', apiField: 'tts.provider', label: 'Text-to-speech vendor', type: 'select', options: TTS, value: tts.provider || 'builtin' },
      { name: 'ttsModel', apiField: 'tts.model', label: 'Text-to-speech model', value: tts.model || '', placeholder: 'vendor default' },
      { name: 'ttsVoice', apiField: 'tts.voice', label: 'Voice', value: tts.voice || '', placeholder: 'vendor default' },
      { name: 'ttsBaseUrl', apiField: 'tts.baseUrl', label: 'Text-to-speech base URL', value: tts.baseUrl || '' },
    ],
    submit: 'Save agent',
    async onSubmit(v) {
      const seconds = v.maxCallSeconds.trim() === '' ? null : Number(v.maxCallSeconds);
      await api('PATCH', tenantPath(ctx.slug), {
        agent: {
          systemPrompt: v.systemPrompt,
          greeting: v.greeting,
          language: v.language.trim(),
          maxCallSeconds: seconds,
          transferNumber: orNull(v.transferNumber),
          llm: { provider: v.llmProvider, model: orNull(v.llmModel), baseUrl: orNull(v.llmBaseUrl) },
          stt: { provider: v.sttProvider, model: orNull(v.sttModel), baseUrl: orNull(v.sttBaseUrl) },
          tts: { provider: v.ttsProvider, model: orNull(v.ttsModel), voice: orNull(v.ttsVoice), baseUrl: orNull(v.ttsBaseUrl) },
        },
      });
      toast('Agent saved. New calls use it.');
    },
  })));
}
