// API keys (the key is shown once, at creation); customer webhooks (the signing secret too,
// and again on rotation) with a test event, enable/disable and their recent deliveries
// (resend); the tenant's provider keys (masked; several per vendor, one default each).

import { api, tenantPath } from '../api.js';
import { h, replace, form, table, toast, confirmButton, section, readOnlyNote, errorBox, when, secretOnce, describe } from '../ui.js';

const SCOPES = [['read', 'read — view only'], ['write', 'write — use the tenant'], ['admin', 'admin — manage it']];
const EVENTS = [['*', 'Every event'], ['call.completed', 'call.completed'], ['recording.saved', 'recording.saved'], ['campaign.finished', 'campaign.finished'], ['usage.threshold', 'usage.threshold']];
const PROVIDERS = [['openai', 'OpenAI'], ['openai-compatible', 'OpenAI-compatible'], ['groq', 'Groq'], ['deepgram', 'Deepgram'], ['elevenlabs', 'ElevenLabs'], ['twilio', 'Twilio'], ['telnyx', 'Telnyx']];

/** `/tenants/{slug}/api-keys`. */
export async function apiKeysPage(ctx) {
  const list = h('div', { 'aria-live': 'polite' });
  const created = h('div');
  ctx.main.append(h('h1', {}, 'API keys'),
    h('p', {}, 'For servers and scripts: send the key as ', h('code', {}, 'Authorization: Bearer <key>'), '.'));
  if (!ctx.can('admin')) {
    ctx.main.append(readOnlyNote(ctx.role));
  } else {
    ctx.main.append(section('New key', form({
      className: 'inline',
      fields: [
        { name: 'name', label: 'Name', required: true, placeholder: 'CRM sync', autocomplete: 'off' },
        { name: 'scope', apiField: 'scopes', label: 'Scope', type: 'select', options: SCOPES, value: 'read' },
      ],
      submit: 'Create key',
      async onSubmit(v, element) {
        const answer = await api('POST', tenantPath(ctx.slug, '/api-keys'), { name: v.name.trim(), scopes: [v.scope] });
        element.reset();
        replace(created, secretOnce(`API key ${answer.apiKey.name}`, answer.key));
        await load();
      },
    }), created));
  }
  ctx.main.append(section('Keys', list));
  async function load() {
    try {
      const reply = await api('GET', tenantPath(ctx.slug, '/api-keys'));
      replace(list, table([
        ['Name', (k) => k.name],
        ['Starts with', (k) => h('code', {}, `${k.prefix}…`)],
        ['Scopes', (k) => k.scopes.join(', ')],
        ['Created', (k) => when(k.createdAt)],
        ['Last used', (k) => when(k.lastUsedAt)],
        ['', (k) => (k.revokedAt ? `revoked ${when(k.revokedAt)}` : ctx.can('admin') ? confirmButton('Revoke', 'Revoke it?', async () => {
          await api('DELETE', tenantPath(ctx.slug, `/api-keys/${encodeURIComponent(k.id)}`));
          await load();
        }) : null)],
      ], reply.items, { empty: 'No API keys.' }));
    } catch (error) {
      replace(list, errorBox(error));
    }
  }
  await load();
}

/** `/tenants/{slug}/webhooks`. */
export async function webhooksPage(ctx) {
  ctx.main.append(h('h1', {}, 'Webhooks'));
  if (!ctx.can('admin')) {
    ctx.main.append(readOnlyNote(ctx.role), h('p', {}, 'Webhook endpoints and deliveries are visible to admins.'));
    return;
  }
  const list = h('div', { 'aria-live': 'polite' });
  const deliveries = h('div', { 'aria-live': 'polite' });
  const created = h('div');
  ctx.main.append(
    h('p', {}, 'We POST signed events (Standard Webhooks) to your HTTPS endpoints and retry until they answer 2xx.'),
    section('New endpoint', form({
      className: 'inline',
      fields: [
        { name: 'url', label: 'URL', type: 'url', required: true, placeholder: 'https://example.com/hooks/switchboard' },
        { name: 'events', label: 'Events', type: 'select', options: EVENTS, value: '*' },
      ],
      submit: 'Add endpoint',
      async onSubmit(v, element) {
        const answer = await api('POST', tenantPath(ctx.slug, '/webhooks'), { url: v.url.trim(), events: [v.events] });
        element.reset();
        replace(created, secretOnce('Signing secret', answer.secret));
        await load();
      },
    }), created),
    section('Endpoints', list),
    section('Recent deliveries', deliveries));
  async function act(action) {
    try {
      await action();
      await load();
    } catch (error) {
      toast(describe(error));
    }
  }
  async function load() {
    try {
      const [endpoints, sent] = await Promise.all([
        api('GET', tenantPath(ctx.slug, '/webhooks')),
        api('GET', tenantPath(ctx.slug, '/webhooks/deliveries')),
      ]);
      const endpoint = (e, rest = '') => tenantPath(ctx.slug, `/webhooks/${encodeURIComponent(e.id)}${rest}`);
      replace(list, table([
        ['URL', (e) => e.url],
        ['Events', (e) => e.events.join(', ')],
        ['State', (e) => (e.enabled ? 'enabled' : 'disabled')],
        ['', (e) => h('div', { class: 'row' },
          h('button', { type: 'button', onclick: () => act(async () => {
            await api('POST', endpoint(e, '/test'), {});
            toast(`Test event queued for ${e.url}.`);
          }) }, 'Send test event'),
          h('button', { type: 'button', onclick: () => act(async () => {
            await api('PATCH', endpoint(e), { enabled: !e.enabled });
            toast(`${e.url} ${e.enabled ? 'disabled' : 'enabled'}.`);
          }) }, e.enabled ? 'Disable' : 'Enable'),
          confirmButton('Rotate secret', 'Rotate? The old one works 24 h more', async () => {
            const rotated = await api('POST', endpoint(e, '/rotate-secret'), {});
            replace(created, secretOnce('New signing secret', rotated.secret));
            await load();
          }),
          confirmButton('Delete', 'Delete it?', async () => {
            await api('DELETE', endpoint(e));
            await load();
          }))],
      ], endpoints.items, { empty: 'No endpoints.' }));
      replace(deliveries, table([
        ['Event', (d) => d.eventType],
        ['Status', (d) => h('span', { class: `badge ${d.status}` }, d.status)],
        ['Attempts', (d) => d.attempts],
        ['Last error', (d) => d.lastError || '—'],
        ['Created', (d) => when(d.createdAt)],
        ['Delivered', (d) => when(d.deliveredAt)],
        ['', (d) => h('button', { type: 'button', onclick: () => act(async () => {
          await api('POST', tenantPath(ctx.slug, `/webhooks/deliveries/${encodeURIComponent(d.id)}/resend`), {});
          toast(`${d.eventType} queued again.`);
        }) }, 'Resend')],
      ], sent.items, { empty: 'Nothing sent yet.' }));
    } catch (error) {
      replace(list, errorBox(error));
    }
  }
  await load();
  ctx.every(10000, load);
}

/** `/tenants/{slug}/provider-keys`. */
export async function providerKeysPage(ctx) {
  ctx.main.append(h('h1', {}, 'Provider keys'),
    h('p', {}, 'Your own keys for speech-to-text, language model and text-to-speech vendors (and your own carrier account). Stored encrypted; shown masked.'));
  if (!ctx.can('member')) {
    ctx.main.append(readOnlyNote(ctx.role, 'member'));
    return;
  }
  const admin = ctx.can('admin');
  const list = h('div', { 'aria-live': 'polite' });
  if (admin) {
    ctx.main.append(section('Add a key', form({
      fields: [
        { name: 'provider', label: 'Vendor', type: 'select', options: PROVIDERS, value: 'openai' },
        { name: 'label', label: 'Label', required: true, placeholder: 'production', autocomplete: 'off' },
        { name: 'secret', label: 'Secret', type: 'password', required: true, autocomplete: 'off', help: 'Never shown again after saving.' },
        { name: 'isDefault', label: 'Default key of this vendor', type: 'checkbox', value: true },
      ],
      submit: 'Save key',
      async onSubmit(v, element) {
        await api('POST', tenantPath(ctx.slug, '/credentials'), { provider: v.provider, label: v.label.trim(), secret: v.secret, isDefault: v.isDefault });
        element.reset();
        toast('Key saved.');
        await load();
      },
    })));
  } else {
    ctx.main.append(readOnlyNote(ctx.role));
  }
  ctx.main.append(section('Keys', list));
  // Asks the vendor whether it accepts the key (one cheap authenticated request made by the
  // gateway); the verdict stays beside the key until the list is reloaded.
  function testButton(c) {
    const verdict = h('span', { class: 'verdict', role: 'status' });
    const button = h('button', { type: 'button', 'aria-label': `Test the ${c.provider} key ${c.label}` }, 'Test connection');
    button.addEventListener('click', async () => {
      button.disabled = true;
      replace(verdict, 'Testing…');
      try {
        const answer = await api('POST', tenantPath(ctx.slug, `/credentials/${encodeURIComponent(c.id)}/test`), {});
        verdict.className = `verdict ${answer.result}`;
        replace(verdict, answer.result === 'ok' ? 'Works' : answer.result === 'rejected' ? 'Refused by the vendor' : 'Unreachable', ': ', answer.message);
      } catch (error) {
        verdict.className = 'verdict rejected';
        replace(verdict, describe(error));
      } finally {
        button.disabled = false;
      }
    });
    return h('div', { class: 'stack-tight' }, button, verdict);
  }
  async function load() {
    try {
      const reply = await api('GET', tenantPath(ctx.slug, '/credentials'));
      replace(list, table([
        ['Vendor', (c) => c.provider],
        ['Label', (c) => c.label],
        ['Secret', (c) => h('code', {}, c.maskedSecret)],
        ['Default', (c) => (c.isDefault ? 'yes' : admin ? h('button', { type: 'button', onclick: async () => {
          try {
            await api('PATCH', tenantPath(ctx.slug, `/credentials/${encodeURIComponent(c.id)}`), { isDefault: true });
            await load();
          } catch (error) {
            toast(error.message);
          }
        } }, 'Make default') : 'no')],
        ['Updated', (c) => when(c.updatedAt)],
        ['Connection', (c) => (admin ? testButton(c) : '—')],
        ['', (c) => (admin ? confirmButton('Delete', 'Delete it?', async () => {
          await api('DELETE', tenantPath(ctx.slug, `/credentials/${encodeURIComponent(c.id)}`));
          await load();
        }) : null)],
      ], reply.items, { empty: 'No keys: the builtin offline agent needs none.' }));
    } catch (error) {
      replace(list, errorBox(error));
    }
  }
  await load();
}
