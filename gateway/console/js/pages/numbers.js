// Phone numbers: buy one (optionally in an area code, answered by a chosen agent), list them
// with status and the agent that answers, release one.

import { api, tenantPath } from '../api.js';
import { h, replace, form, table, toast, confirmButton, section, readOnlyNote, errorBox } from '../ui.js';

/** `/tenants/{slug}/numbers`. */
export async function page(ctx) {
  const list = h('div', { 'aria-live': 'polite' });
  ctx.main.append(h('h1', {}, 'Phone numbers'));
  if (ctx.can('admin')) {
    const agents = await api('GET', tenantPath(ctx.slug, '/agents?limit=100'));
    ctx.main.append(section('Buy a number', form({
      className: 'inline',
      fields: [
        { name: 'areaCode', label: 'Area code', placeholder: '555', help: 'Digits; leave empty for any number in the country. The sandbox carrier has 555.', autocomplete: 'off' },
        { name: 'agent', label: 'Answered by', type: 'select', value: 'default', options: (agents.items || []).map((a) => [a.name, a.name === 'default' ? 'default agent' : a.name]) },
      ],
      submit: 'Buy number',
      async onSubmit(values) {
        const body = values.areaCode.trim() ? { areaCode: values.areaCode.trim() } : {};
        if (values.agent && values.agent !== 'default') body.agent = values.agent;
        const bought = await api('POST', tenantPath(ctx.slug, '/numbers'), body);
        toast(bought.e164 ? `Bought ${bought.e164}.` : 'Purchase under way.');
        await load();
      },
    })));
  } else {
    ctx.main.append(readOnlyNote(ctx.role));
  }
  ctx.main.append(section('Your numbers', list));

  async function load() {
    try {
      const page = await api('GET', tenantPath(ctx.slug, '/numbers'));
      if (!ctx.current()) return;
      replace(list, table([
        ['Number', (n) => n.e164 || h('em', {}, 'being bought')],
        ['Status', (n) => h('span', { class: `badge ${String(n.status).toLowerCase()}` }, n.status)],
        ['Carrier', (n) => n.carrier],
        ['Answered by', (n) => h('a', { href: `/tenants/${encodeURIComponent(ctx.slug)}/agents/${encodeURIComponent(n.agent || 'default')}` }, n.agent || 'default agent')],
        ['', (n) => (ctx.can('admin') && n.e164 ? confirmButton('Release', `Release ${n.e164}?`, async () => {
          await api('DELETE', tenantPath(ctx.slug, `/numbers/${encodeURIComponent(n.e164)}`));
          toast(`Released ${n.e164}.`);
          await load();
        }) : null)],
      ], page.items, { caption: 'Numbers of this tenant', empty: 'No numbers yet. Buy one to take calls.' }));
    } catch (error) {
      replace(list, errorBox(error));
    }
  }
  await load();
  // Kubernetes purchases finish later: refresh while one is pending.
  ctx.every(5000, () => { if (list.querySelector('em')) load(); });
}
