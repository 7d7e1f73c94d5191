// The audit log: who changed what, newest first, paged.

import { api, tenantPath } from '../api.js';
import { h, replace, table, section, errorBox, when } from '../ui.js';

/** `/tenants/{slug}/audit`. */
export async function page(ctx) {
  const list = h('div', { 'aria-live': 'polite' });
  const pager = h('div', { class: 'row pager' });
  const cursors = [];
  let cursor = null;
  ctx.main.append(h('h1', {}, 'Audit log'), section('Events', list, pager));
  async function load() {
    try {
      const query = new URLSearchParams({ limit: '50' });
      if (cursor) query.set('cursor', cursor);
      const reply = await api('GET', tenantPath(ctx.slug, `/audit-log?${query}`));
      replace(list, table([
        ['When', (e) => when(e.createdAt)],
        ['Action', (e) => h('code', {}, e.action)],
        ['By', (e) => `${e.actorType}${e.actorId ? ' ' + e.actorId : ''}`],
        ['Target', (e) => (e.targetType ? `${e.targetType} ${e.targetId || ''}` : '—')],
        ['From', (e) => e.ip || '—'],
      ], reply.items, { caption: 'Audit events, newest first', empty: 'No events.' }));
      replace(pager,
        cursors.length ? h('button', { type: 'button', onclick: () => { cursor = cursors.pop(); load(); } }, 'Newer') : null,
        reply.nextCursor ? h('button', { type: 'button', onclick: () => { cursors.push(cursor); cursor = reply.nextCursor; load(); } }, 'Older') : null);
    } catch (error) {
      replace(list, errorBox(error));
    }
  }
  await load();
}
