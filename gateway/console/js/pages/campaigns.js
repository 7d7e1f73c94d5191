// Campaigns: the list, create one (from a number, a calling window, pacing), upload contacts as CSV with
// each refused row named, follow progress live, pause, resume or stop it, read and download the results; and
// the tenant's do-not-call list.

import { api, tenantPath, download } from '../api.js';
import { h, replace, form, table, toast, confirmButton, section, readOnlyNote, errorBox, when, describe } from '../ui.js';

const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

/** `/tenants/{slug}/campaigns` and `/tenants/{slug}/campaigns/{name}`. */
export async function page(ctx) {
  if (ctx.sub) return detail(ctx, ctx.sub);
  const base = `/tenants/${encodeURIComponent(ctx.slug)}/campaigns`;
  const list = h('div', { 'aria-live': 'polite' });
  const pager = h('div', { class: 'row pager' });
  const cursors = [];
  let cursor = null;
  ctx.main.append(h('h1', {}, 'Campaigns'), section('Your campaigns', list, pager));
  async function load() {
    try {
      const query = new URLSearchParams({ limit: '25' });
      if (cursor) query.set('cursor', cursor);
      const page = await api('GET', tenantPath(ctx.slug, `/campaigns?${query}`));
      if (!ctx.current()) return;
      replace(list, table([
        ['Name', (c) => h('a', { href: `${base}/${encodeURIComponent(c.name)}` }, c.name)],
        ['Phase', (c) => h('span', { class: `badge ${String(c.phase).toLowerCase()}` }, c.phase)],
        ['Calls from', (c) => c.fromNumber],
        ['Why held', (c) => c.reason || '—'],
        ['Changed', (c) => when(c.updatedAt)],
      ], page.items, { caption: 'Campaigns of this tenant', empty: 'No campaigns yet.' }));
      replace(pager,
        cursors.length ? h('button', { type: 'button', onclick: () => { cursor = cursors.pop(); load(); } }, 'Newer') : null,
        page.nextCursor ? h('button', { type: 'button', onclick: () => { cursors.push(cursor); cursor = page.nextCursor; load(); } }, 'Older') : null);
    } catch (error) {
      replace(list, errorBox(error));
    }
  }
  await load();
  ctx.every(5000, () => { if (!cursor) load(); });
  if (!ctx.can('admin')) {
    ctx.main.append(readOnlyNote(ctx.role));
    return;
  }
  const numbers = await api('GET', tenantPath(ctx.slug, '/numbers'));
  const routed = (numbers.items || []).filter((n) => n.e164);
  if (routed.length === 0) {
    ctx.main.append(section('New campaign', h('p', {}, 'Campaigns call from one of your numbers. ',
      h('a', { href: `/tenants/${encodeURIComponent(ctx.slug)}/numbers` }, 'Buy a number'), ' first.')));
    return;
  }
  ctx.main.append(section('New campaign', form({
    fields: [
      { name: 'name', apiField: 'campaign', label: 'Name', required: true, help: 'Lower-case letters, digits and "-", e.g. spring-renewals.', autocomplete: 'off' },
      { name: 'fromNumber', label: 'Call from', type: 'select', options: routed.map((n) => [n.e164, n.e164]) },
      { name: 'timeZone', apiField: 'schedule.timeZone', label: 'Time zone', value: ZONE, help: 'IANA name, e.g. America/New_York.' },
      { name: 'windowStart', apiField: 'schedule.windowStart', label: 'Calling window opens', type: 'time', value: '09:00' },
      { name: 'windowEnd', apiField: 'schedule.windowEnd', label: 'Calling window closes', type: 'time', value: '17:00' },
      { name: 'maxConcurrent', apiField: 'pacing.maxConcurrent', label: 'Calls at once', type: 'number', min: 1, value: 2 },
      { name: 'callsPerMinute', apiField: 'pacing.callsPerMinute', label: 'Calls per minute', type: 'number', min: 1, value: 10 },
      { name: 'maxAttempts', apiField: 'retry.maxAttempts', label: 'Attempts per contact', type: 'number', min: 1, value: 2 },
    ],
    submit: 'Create campaign',
    async onSubmit(v) {
      const name = v.name.trim();
      if (!name) throw new Error('Name is required');
      await api('PUT', tenantPath(ctx.slug, `/campaigns/${encodeURIComponent(name)}`), {
        fromNumber: v.fromNumber,
        contacts: { uploaded: true },
        schedule: { timeZone: v.timeZone.trim(), windowStart: v.windowStart, windowEnd: v.windowEnd },
        pacing: { maxConcurrent: Number(v.maxConcurrent), callsPerMinute: Number(v.callsPerMinute) },
        retry: { maxAttempts: Number(v.maxAttempts) },
      });
      toast(`Campaign ${name} created. Upload its contacts next.`);
      ctx.navigate(`${base}/${encodeURIComponent(name)}`);
    },
  })));
}

function progressView(p) {
  const done = p.completed + p.failed + p.noAnswer;
  return h('div', {},
    h('p', {}, 'Phase: ', h('strong', { id: 'campaign-phase' }, p.phase), p.reason ? ` — ${p.reason}` : ''),
    p.total > 0 ? h('progress', { max: p.total, value: done, 'aria-label': `${done} of ${p.total} contacts done` }) : null,
    h('dl', { class: 'facts' },
      h('dt', {}, 'Contacts'), h('dd', {}, p.total),
      h('dt', {}, 'Waiting'), h('dd', {}, p.pending),
      h('dt', {}, 'On a call'), h('dd', {}, p.inProgress),
      h('dt', {}, 'Completed'), h('dd', {}, p.completed),
      h('dt', {}, 'No answer'), h('dd', {}, p.noAnswer),
      h('dt', {}, 'Failed'), h('dd', {}, p.failed)));
}

async function detail(ctx, name) {
  const path = tenantPath(ctx.slug, `/campaigns/${encodeURIComponent(name)}`);
  const progress = h('div', { 'aria-live': 'polite' });
  const results = h('div');
  const uploadResult = h('div', { id: 'upload-result', 'aria-live': 'polite' });
  ctx.main.append(
    h('p', {}, h('a', { href: `/tenants/${encodeURIComponent(ctx.slug)}/campaigns` }, '← Campaigns')),
    h('h1', {}, `Campaign ${name}`),
    section('Progress', progress));
  if (ctx.can('member')) {
    const file = { name: 'file', label: 'CSV file', type: 'file', accept: '.csv,text/csv', help: 'A header row with a phone column (E.164); optional id, name and variable columns.' };
    ctx.main.append(section('Upload contacts', form({
      fields: [file, { name: 'csv', label: 'Or paste CSV', type: 'textarea', rows: 5, placeholder: 'phone,name\n+15551230001,Ada' }],
      submit: 'Upload contacts',
      async onSubmit(v) {
        const text = v.file && v.file.length ? await v.file[0].text() : v.csv;
        if (!text.trim()) throw new Error('Choose a CSV file or paste its rows');
        const answer = await api('POST', `${path}/contacts`, text, { contentType: 'text/csv' });
        replace(uploadResult,
          h('p', { class: answer.rejected.length ? 'warning' : 'success', role: 'status' },
            `${answer.accepted} contact${answer.accepted === 1 ? '' : 's'} added, ${answer.rejected.length} refused; the campaign has ${answer.total}.`),
          answer.rejected.length ? table([['Row', (r) => r.row], ['Why it was refused', (r) => r.error]], answer.rejected, { caption: 'Refused rows (1 is the first row after the header)' }) : null);
        await load();
      },
    }), uploadResult));
  }
  const controls = h('div', { class: 'row' });
  let latest = null;
  if (ctx.can('admin')) {
    ctx.main.append(section('Pause', h('p', {}, 'Pausing places no new calls until you resume; calls under way finish.'), controls));
    ctx.main.append(section('Stop', h('p', {}, 'Stopping places no new calls; calls under way finish. It cannot be undone.'),
      confirmButton('Stop campaign', 'Really stop it?', async () => {
        await api('DELETE', path);
        toast(`Campaign ${name} stopped.`);
        await load();
      })));
  }
  ctx.main.append(section('Results', h('p', {}, h('button', { type: 'button', onclick: () => download(`${path}/results.csv`, `${name}-results.csv`) }, 'Download results (CSV)')), results));

  async function load() {
    try {
      const [p, page] = await Promise.all([api('GET', path), api('GET', `${path}/results?limit=50`)]);
      if (!ctx.current()) return;
      latest = p;
      replace(progress, progressView(p));
      if (ctx.can('admin')) drawControls();
      replace(results, table([
        ['Phone', (c) => c.phone],
        ['Name', (c) => c.name || '—'],
        ['State', (c) => c.state],
        ['Attempts', (c) => c.attempts],
        ['Last outcome', (c) => c.lastOutcome || '—'],
      ], page.items, { caption: 'First 50 contacts', empty: 'No contacts yet.' }));
    } catch (error) {
      replace(progress, errorBox(error));
    }
  }
  // Pause and resume: the registered spec sent back with `suspend` changed.
  function drawControls() {
    if (!latest || !latest.spec) {
      replace(controls);
      return;
    }
    const suspended = Boolean(latest.spec.suspend);
    const current = controls.querySelector('button');
    const text = suspended ? 'Resume campaign' : 'Pause campaign';
    if (current && current.textContent === text) return;
    replace(controls, h('button', { type: 'button', onclick: async (event) => {
      event.target.disabled = true;
      try {
        await api('PUT', path, { ...latest.spec, suspend: !suspended });
        toast(suspended ? `Campaign ${name} resumed.` : `Campaign ${name} paused: no new calls.`);
        await load();
      } catch (error) {
        toast(describe(error));
        event.target.disabled = false;
      }
    } }, text));
  }

  await load();
  ctx.every(3000, load);
}

/** `/tenants/{slug}/do-not-call`. */
export async function doNotCallPage(ctx) {
  const list = h('div', { 'aria-live': 'polite' });
  ctx.main.append(h('h1', {}, 'Do not call'), h('p', {}, 'Campaigns never dial these numbers.'));
  if (ctx.can('admin')) {
    ctx.main.append(section('Add a number', form({
      className: 'inline',
      fields: [
        { name: 'phone', label: 'Number', placeholder: '+15551230000', required: true, help: 'E.164' },
        { name: 'reason', label: 'Reason' },
      ],
      submit: 'Add',
      async onSubmit(v, element) {
        await api('POST', tenantPath(ctx.slug, '/do-not-call'), { phone: v.phone.trim(), reason: v.reason.trim() || null });
        element.reset();
        toast(`${v.phone.trim()} will not be called.`);
        await load();
      },
    })));
  } else {
    ctx.main.append(readOnlyNote(ctx.role));
  }
  ctx.main.append(section('Numbers', list));
  async function load() {
    try {
      const reply = await api('GET', tenantPath(ctx.slug, '/do-not-call'));
      replace(list, table([
        ['Number', (r) => r.phone],
        ['Reason', (r) => r.reason || '—'],
        ['', (r) => (ctx.can('admin') ? confirmButton('Remove', `Remove ${r.phone}?`, async () => {
          await api('DELETE', tenantPath(ctx.slug, `/do-not-call/${encodeURIComponent(r.phone)}`));
          await load();
        }) : null)],
      ], reply.items, { empty: 'The list is empty.' }));
    } catch (error) {
      replace(list, errorBox(error));
    }
  }
  await load();
}
