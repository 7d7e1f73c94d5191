// Usage this month against the plan's limits, the monthly history as a chart, and billing:
// plan, Stripe Checkout and Billing Portal, and the page Stripe returns to.

import { api, tenantPath } from '../api.js';
import { h, replace, table, toast, when, section, errorBox, readOnlyNote } from '../ui.js';
import { barChart } from '../chart.js';

const PLANS = ['starter', 'professional', 'enterprise'];

function meter(label, used, limit, unit) {
  const unlimited = limit === null || limit === undefined;
  const text = unlimited ? `${used} ${unit} (no limit)` : `${used} of ${limit} ${unit}`;
  return h('div', { class: 'meter' },
    h('div', { class: 'meter-label' }, h('span', {}, label), h('span', {}, text)),
    unlimited ? null : h('meter', { min: 0, max: Math.max(1, limit), value: Math.min(used, limit), low: limit * 0.7, high: limit * 0.9, optimum: 0, 'aria-label': `${label}: ${text}` }));
}

function usageMeters(reply) {
  const u = reply.usage;
  const l = reply.limits || {};
  return h('div', { class: 'meters', id: 'usage-meters' },
    meter('Calls', u.callCount, l.monthlyCalls, 'calls'),
    meter('Call minutes', u.callMinutes, l.monthlyMinutes, 'minutes'),
    meter('API requests', u.apiRequests, l.monthlyApiRequests, 'requests'),
    h('p', { class: 'help' }, `Speech-to-text ${Number(u.sttMinutes || 0).toFixed(1)} minutes · text-to-speech ${u.ttsCharacters || 0} characters · `,
      l.phoneNumbers === null || l.phoneNumbers === undefined ? 'numbers: no limit' : `up to ${l.phoneNumbers} numbers`,
      ` · campaigns ${l.campaigns ? 'included' : 'not included'}`));
}

/** `2026-12` as the reader's short month and year (`Dec 26`). */
function monthLabel(period) {
  const [year, month] = period.split('-').map(Number);
  const date = new Date(Date.UTC(year, (month || 1) - 1, 1));
  return Number.isNaN(date.getTime()) ? period : date.toLocaleString(undefined, { month: 'short', year: '2-digit', timeZone: 'UTC' });
}

/** `/tenants/{slug}/usage`. */
export async function page(ctx) {
  const now = h('div', { 'aria-live': 'polite' });
  const past = h('div');
  ctx.main.append(h('h1', {}, 'Usage'), section('This month', now), section('History', past));
  async function load() {
    try {
      const reply = await api('GET', tenantPath(ctx.slug, '/usage'));
      if (!ctx.current()) return;
      replace(now, h('p', {}, `Period ${reply.period} on the ${reply.plan} plan.`), usageMeters(reply));
    } catch (error) {
      replace(now, errorBox(error));
    }
  }
  await load();
  try {
    const reply = await api('GET', tenantPath(ctx.slug, '/usage/history?limit=12'));
    const months = reply.items.slice().reverse();
    const points = months.map((m) => ({ label: monthLabel(m.period), value: m.callMinutes }));
    replace(past, months.length === 0 ? h('p', { class: 'empty' }, 'No history yet.') : [
      barChart('Call minutes per month', points, 'minutes'),
      table([['Month', (m) => m.period], ['Calls', (m) => m.callCount], ['Minutes', (m) => m.callMinutes], ['API requests', (m) => m.apiRequests]], months.slice().reverse(), { caption: 'Monthly usage' }),
    ]);
  } catch (error) {
    replace(past, errorBox(error));
  }
  ctx.every(10000, load);
}

/** `/tenants/{slug}/billing` (also where Stripe Checkout and the Portal return). */
export async function billingPage(ctx) {
  const returned = ctx.query.has('session');
  if (returned) history.replaceState(null, '', location.pathname);
  const status = h('div', { 'aria-live': 'polite' });
  ctx.main.append(h('h1', {}, 'Billing'));
  if (returned) {
    ctx.main.append(h('p', { class: 'success', role: 'status' },
      'Thank you. Stripe confirms the payment to us in a moment; your plan changes here as soon as it does.'));
  }
  ctx.main.append(section('Plan', status));
  const admin = ctx.can('admin');
  if (!admin) ctx.main.append(readOnlyNote(ctx.role));

  async function load() {
    try {
      const reply = await api('GET', tenantPath(ctx.slug, '/billing/status'));
      if (!ctx.current()) return;
      const sub = reply.subscription;
      replace(status,
        h('p', {}, 'Current plan: ', h('strong', { id: 'current-plan' }, reply.plan)),
        sub && sub.subscriptionStatus ? h('p', {}, `Subscription ${sub.subscriptionStatus}`,
          sub.currentPeriodEnd ? `, renews ${when(sub.currentPeriodEnd)}` : '') : null,
        usageMeters(reply.usage),
        admin ? h('div', { class: 'row' },
          PLANS.filter((p) => p !== reply.plan).map((plan) => h('button', { type: 'button', class: 'primary', onclick: () => go('checkout', { plan }) }, `Upgrade to ${plan}`)),
          sub ? h('button', { type: 'button', onclick: () => go('portal', {}) }, 'Manage billing (invoices, card, cancel)') : null) : null);
    } catch (error) {
      replace(status, errorBox(error));
    }
  }

  async function go(kind, body) {
    try {
      const session = await api('POST', tenantPath(ctx.slug, `/billing/${kind}`), body);
      location.assign(session.url);
    } catch (error) {
      toast(error.message);
    }
  }

  await load();
  if (returned) ctx.every(3000, load);
}
