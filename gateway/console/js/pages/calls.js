// Calls: the list with filters and paging (live: the first page refreshes while shown),
// and one call's timeline and transcript (refreshing until the call ends) and its recording.

import { api, tenantPath, download } from '../api.js';
import { h, replace, form, table, when, errorBox, section } from '../ui.js';

const LIVE_MS = 3000;
/** How long after a call ends its page still looks for the recording (the runtime uploads it then). */
const RECORDING_WAIT_MS = 60000;
/** The carrier of a test call started from an agent's page ("call it now"). */
const TEST_CARRIER = 'browser';

function duration(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  const m = Math.floor(seconds / 60);
  const s = seconds % 60;
  return m ? `${m} min ${s} s` : `${s} s`;
}

function isoFromLocal(value) {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date.toISOString();
}

/** `/tenants/{slug}/calls` and `/tenants/{slug}/calls/{id}`. */
export async function page(ctx) {
  if (ctx.sub) return detail(ctx, ctx.sub);
  const filters = {
    direction: ctx.query.get('direction') || '',
    outcome: ctx.query.get('outcome') || '',
    campaign: ctx.query.get('campaign') || '',
    from: ctx.query.get('from') || '',
    to: ctx.query.get('to') || '',
  };
  const cursors = [];
  let cursor = ctx.query.get('cursor') || null;
  const list = h('div', { 'aria-live': 'polite' });
  const pager = h('div', { class: 'row pager' });
  const base = `/tenants/${encodeURIComponent(ctx.slug)}/calls`;

  function search() {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(filters)) if (value) query.set(key, key === 'from' || key === 'to' ? isoFromLocal(value) : value);
    return query;
  }

  ctx.main.append(h('h1', {}, 'Calls'), section('Filter', form({
    className: 'inline',
    fields: [
      { name: 'direction', label: 'Direction', type: 'select', value: filters.direction, options: [['', 'Any'], ['inbound', 'Inbound'], ['outbound', 'Outbound']] },
      { name: 'outcome', label: 'Outcome', value: filters.outcome, placeholder: 'e.g. completed' },
      { name: 'campaign', label: 'Campaign', value: filters.campaign },
      { name: 'from', label: 'From', type: 'datetime-local', value: filters.from.slice(0, 16) },
      { name: 'to', label: 'To', type: 'datetime-local', value: filters.to.slice(0, 16) },
    ],
    submit: 'Apply',
    async onSubmit(values) {
      Object.assign(filters, values);
      const query = search();
      history.replaceState(null, '', `${base}${query.size ? '?' + query : ''}`);
      cursors.length = 0;
      cursor = null;
      await load();
    },
  })), section('Calls', list, pager, h('p', {}, h('button', { type: 'button', onclick: () => download(tenantPath(ctx.slug, `/calls/export.csv?${search()}`), 'calls.csv') }, 'Download CSV'))));

  async function load() {
    const query = search();
    if (cursor) query.set('cursor', cursor);
    query.set('limit', '25');
    try {
      const page = await api('GET', tenantPath(ctx.slug, `/calls?${query}`));
      if (!ctx.current()) return;
      replace(list, table([
        ['Started', (c) => h('a', { href: `${base}/${encodeURIComponent(c.id)}` }, when(c.startedAt))],
        ['Direction', (c) => c.direction],
        ['From', (c) => (c.carrier === TEST_CARRIER ? h('span', { class: 'badge test' }, 'test call') : c.from || '—')],
        ['To', (c) => c.to || '—'],
        ['Status', (c) => h('span', { class: `badge ${c.status}` }, c.status)],
        ['Outcome', (c) => c.outcome || '—'],
        ['Duration', (c) => duration(c.durationSeconds)],
        ['Turns', (c) => c.turns ?? '—'],
      ], page.items, { caption: 'Calls, newest first', empty: 'No calls match.' }));
      replace(pager,
        cursors.length ? h('button', { type: 'button', onclick: () => { cursor = cursors.pop(); load(); } }, 'Newer') : null,
        page.nextCursor ? h('button', { type: 'button', onclick: () => { cursors.push(cursor); cursor = page.nextCursor; load(); } }, 'Older') : null);
    } catch (error) {
      replace(list, errorBox(error));
    }
  }
  await load();
  // Live: the newest page follows new and ending calls without a reload.
  ctx.every(LIVE_MS, () => { if (!cursor) load(); });
}

async function detail(ctx, id) {
  const back = h('p', {}, h('a', { href: `/tenants/${encodeURIComponent(ctx.slug)}/calls` }, '← All calls'));
  const summary = h('div', { 'aria-live': 'polite' });
  const transcript = h('div', { 'aria-live': 'polite' });
  const recording = recordingCard(ctx, id);
  ctx.main.append(back, h('h1', {}, 'Call'), section('Timeline', summary), section('Transcript', transcript), recording.element);
  let ended = false;
  let endedAt = null;

  async function load() {
    try {
      const [call, turns] = await Promise.all([
        api('GET', tenantPath(ctx.slug, `/calls/${encodeURIComponent(id)}`)),
        api('GET', tenantPath(ctx.slug, `/calls/${encodeURIComponent(id)}/transcript`)),
      ]);
      if (!ctx.current()) return;
      ended = Boolean(call.endedAt);
      endedAt = call.endedAt ? new Date(call.endedAt).getTime() : null;
      replace(summary,
        h('dl', { class: 'facts' },
          h('dt', {}, 'From'), h('dd', {}, call.carrier === TEST_CARRIER ? 'Test call from the console' : call.from || '—'),
          h('dt', {}, 'To'), h('dd', {}, call.to || '—'),
          h('dt', {}, 'Direction'), h('dd', {}, call.direction),
          h('dt', {}, 'Status'), h('dd', {}, call.status, call.outcome ? ` (${call.outcome})` : ''),
          h('dt', {}, 'Duration'), h('dd', {}, duration(call.durationSeconds)),
          call.campaign ? [h('dt', {}, 'Campaign'), h('dd', {}, call.campaign)] : null),
        h('ol', { class: 'timeline' },
          h('li', {}, h('strong', {}, 'Started '), when(call.startedAt)),
          call.answeredAt ? h('li', {}, h('strong', {}, 'Answered '), when(call.answeredAt)) : null,
          (turns.items || []).map((t) => h('li', {}, h('strong', {}, `+${(t.offsetMs / 1000).toFixed(1)} s `), `${t.role} spoke`)),
          call.endedAt ? h('li', {}, h('strong', {}, 'Ended '), when(call.endedAt)) : h('li', {}, h('em', {}, 'In progress…'))));
      const items = turns.items || [];
      replace(transcript, items.length === 0
        ? h('p', { class: 'empty' }, ended ? 'Nothing was said.' : 'Waiting for the first words…')
        : h('ol', { class: 'transcript' }, items.map((t) => h('li', { class: `turn ${t.role}` },
          h('span', { class: 'speaker' }, t.role === 'agent' ? 'Agent' : t.role === 'caller' ? 'Caller' : t.role), ' ',
          h('span', { class: 'said' }, t.text)))));
    } catch (error) {
      replace(summary, errorBox(error));
    }
  }
  await load();
  if (ended) await recording.look(endedAt);
  ctx.every(LIVE_MS, () => {
    if (!ended) load().then(() => { if (ended) recording.look(endedAt); });
    else recording.look(endedAt);
  });
}

function bytes(size) {
  return size >= 1048576 ? `${(size / 1048576).toFixed(1)} MB` : `${Math.max(1, Math.round(size / 1024))} kB`;
}

/**
 * The call's recording: what was recorded (every role), and for members and above (the API
 * serves the audio to them only) a player and a download link. An `<audio>` element cannot
 * send the session's bearer token, so the WAV is fetched once with it and played from an
 * object URL (the CSP's `media-src blob:`); each fetch is in the tenant's audit log.
 */
function recordingCard(ctx, id) {
  const body = h('div', { id: 'call-recording', 'aria-live': 'polite' }, h('p', { class: 'empty' }, 'Shown when the call has ended.'));
  const element = section('Recording', body);
  let found = false;
  let busy = false;
  let objectUrl = null;
  // The object URL is released when the console shows another page.
  const watch = setInterval(() => {
    if (ctx.current()) return;
    clearInterval(watch);
    if (objectUrl) URL.revokeObjectURL(objectUrl);
  }, 1000);

  /** Looks for the recording (the call ended at `endedAt`, ms); again later while it may still come. */
  async function look(endedAt) {
    if (found || busy) return;
    // A call that ended long ago either has its recording or never will.
    if (body.dataset.state === 'none' && Date.now() - (endedAt || 0) > RECORDING_WAIT_MS) return;
    busy = true;
    try {
      let meta;
      try {
        meta = await api('GET', tenantPath(ctx.slug, `/calls/${encodeURIComponent(id)}/recording`));
      } catch (error) {
        if (!ctx.current()) return;
        if (error.status === 404) {
          body.dataset.state = 'none';
          const late = Date.now() - (endedAt || 0) > RECORDING_WAIT_MS;
          replace(body, h('p', { class: 'empty' }, late
            ? 'No recording: this call was not recorded.'
            : 'No recording yet: when the agent records calls, the file arrives just after the call ends.'));
          return;
        }
        throw error;
      }
      if (!ctx.current()) return;
      found = true;
      body.dataset.state = 'found';
      const seconds = (meta.durationMs / 1000).toFixed(1);
      const channels = meta.channels === 2 ? 'two channels: the caller left, the agent right' : 'one channel: caller and agent mixed';
      const facts = h('p', { id: 'call-recording-facts' }, `WAV, ${seconds} s, ${channels}, ${bytes(meta.bytes)}.`);
      if (!ctx.can('member')) {
        replace(body, facts, h('p', { class: 'note', role: 'note' }, `Your role (${ctx.role}) can see that this call was recorded; listening needs the member role.`));
        return;
      }
      replace(body, facts, h('p', { class: 'loading' }, 'Loading the recording…'));
      const response = await api('GET', meta.download, null, { raw: true });
      const blob = await response.blob();
      if (!ctx.current()) return;
      objectUrl = URL.createObjectURL(blob);
      const label = h('span', { id: 'call-recording-label' }, `Recording of this call (${seconds} s)`);
      replace(body,
        h('figure', { class: 'figure recording' },
          h('figcaption', {}, label),
          h('audio', { controls: true, preload: 'metadata', src: objectUrl, 'aria-labelledby': 'call-recording-label' })),
        facts,
        h('p', {}, h('a', { href: objectUrl, download: `${id}.wav`, class: 'btn' }, 'Download recording')));
    } catch (error) {
      if (ctx.current()) replace(body, errorBox(error));
    } finally {
      busy = false;
    }
  }

  return { element, look };
}
