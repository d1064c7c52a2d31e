// Drives Qlik's official TypeScript client, @qlik/api, against a bulkshare simulator.
//
//   QLIK_SIM_URL=http://127.0.0.1:PORT QLIK_API_KEY=... [QLIK_PAGE_LIMIT=25] node run_client.mjs
//
// Pages through the whole task list twice by the client's own next() (default order, then
// sorted by name), gets, patches, executes and reads back one task, reads the settings, deletes
// another task and expects a 404 for it. Prints one JSON line ({"ok": true|false, ...}) on
// stdout; exits 1 on any mismatch, 2 on bad usage.

import sharingTasks from "@qlik/api/sharing-tasks";

const host = process.env.QLIK_SIM_URL;
const apiKey = process.env.QLIK_API_KEY;
const limit = Number(process.env.QLIK_PAGE_LIMIT ?? "25");
if (!host || !apiKey || !Number.isInteger(limit) || limit < 1 || limit > 100) {
  console.error("usage: QLIK_SIM_URL=<base url> QLIK_API_KEY=<key> [QLIK_PAGE_LIMIT=1..100] node run_client.mjs");
  process.exit(2);
}

// Every call carries its host config (the documented ApiCallOptions.hostConfig): an API key is
// sent as "Authorization: Bearer <key>", and an http:// host is used as given.
const options = { hostConfig: { host, authType: "apikey", apiKey } };

const result = { ok: false, client: "@qlik/api/sharing-tasks", failures: [] };

function check(condition, message) {
  if (!condition) result.failures.push(message);
  return condition;
}

function describeError(err) {
  return { message: String(err?.message ?? err), status: err?.status, data: err?.data };
}

async function listAll(query, label) {
  const ids = [];
  const names = [];
  const pageSizes = [];
  const totals = new Set();
  let response = await sharingTasks.getSharingTasks(query, options);
  for (;;) {
    const where = `${label} page ${pageSizes.length}`;
    check(response.status === 200, `${where}: status ${response.status}`);
    const { sharingTasks: tasks, totalCount, currentPageCount } = response.data;
    check(Array.isArray(tasks), `${where}: sharingTasks is not an array`);
    check(currentPageCount === tasks.length, `${where}: currentPageCount ${currentPageCount} != ${tasks.length}`);
    check(tasks.length <= query.limit, `${where}: ${tasks.length} tasks > limit ${query.limit}`);
    totals.add(totalCount);
    pageSizes.push(tasks.length);
    ids.push(...tasks.map((t) => t.id));
    names.push(...tasks.map((t) => t.name));
    if (!response.next) break;
    if (!check(pageSizes.length < 10_000, `${label}: more than 10000 pages`)) break;
    response = await response.next();
  }
  const total = [...totals][0];
  check(totals.size === 1, `${label}: totalCount changed between pages: ${[...totals]}`);
  check(new Set(ids).size === ids.length, `${label}: a task was listed twice`);
  check(ids.length === total, `${label}: listed ${ids.length} tasks, totalCount says ${total}`);
  return { ids, names, total, pageSizes };
}

async function getTask(id) {
  const response = await sharingTasks.getSharingTask(id, {}, options);
  check(response.status === 200, `get ${id}: status ${response.status}`);
  check(response.data?.id === id, `get ${id}: answered id ${response.data?.id}`);
  return response.data;
}

async function expect404(id) {
  try {
    const response = await sharingTasks.getSharingTask(id, {}, options);
    check(false, `get deleted ${id}: status ${response.status}, expected 404`);
    return response.status;
  } catch (err) {
    check(err?.status === 404, `get deleted ${id}: status ${err?.status}, expected 404`);
    const errors = err?.data?.errors;
    check(Array.isArray(errors) && errors.length > 0, `get deleted ${id}: no errors[] in the 404 body`);
    return err?.status;
  }
}

async function main() {
  // The whole list in the default order, following response.next() (links.next.href).
  const listing = await listAll({ limit }, "list");
  result.listed = listing.ids.length;
  result.totalCount = listing.total;
  result.pages = listing.pageSizes.length;
  result.pageSizes = listing.pageSizes;

  // Again sorted by name, in bigger pages: the same tasks, in name order.
  const byName = await listAll({ limit: Math.min(100, limit * 2), sort: ["+name"] }, "list by name");
  check(byName.ids.length === listing.ids.length, `list by name: ${byName.ids.length} tasks, not ${listing.ids.length}`);
  check(byName.ids.every((id) => listing.ids.includes(id)), "list by name: a task not in the first listing");
  check(byName.names.every((name, i) => i === 0 || byName.names[i - 1] <= name), "list by name: names out of order");
  result.pagesByName = byName.pageSizes.length;

  // The task to work on: the first listed one that can be executed (not DELETING).
  let target = null;
  for (const id of listing.ids) {
    const task = await getTask(id);
    if (task.statusCode !== "DELETING" && task.enabled) {
      target = task;
      break;
    }
  }
  if (!check(target !== null, "no enabled, non-deleting task to work on")) return;
  result.taskId = target.id;
  check(
    typeof target.links?.self?.href === "string" && target.links.self.href.endsWith(`/api/v1/sharing-tasks/${target.id}`),
    `get ${target.id}: links.self.href is ${target.links?.self?.href}`,
  );

  // PATCH /name and /tags, then read them back (the client drops its cached GET on a PATCH).
  const newName = `${target.name} (patched by @qlik/api)`;
  const newTags = ["qlik-api", "cross-client"];
  const patched = await sharingTasks.patchSharingTask(
    target.id,
    [
      { op: "replace", path: "/name", value: newName },
      { op: "replace", path: "/tags", value: newTags },
    ],
    options,
  );
  check(patched.status === 204, `patch ${target.id}: status ${patched.status}`);
  const after = await getTask(target.id);
  check(after.name === newName, `patch ${target.id}: name reads back as ${JSON.stringify(after.name)}`);
  check(JSON.stringify(after.tags) === JSON.stringify(newTags), `patch ${target.id}: tags read back as ${JSON.stringify(after.tags)}`);
  result.patchedName = after.name;
  result.patchedTags = after.tags;

  // POST actions/execute, then the task's latest execution.
  const before = await sharingTasks.getSharingTaskExecutions(target.id, {}, options);
  const executed = await sharingTasks.executeSharingTasks({ sharingTaskID: target.id }, options);
  check(executed.status === 204, `execute ${target.id}: status ${executed.status}`);
  const runs = await sharingTasks.getSharingTaskExecutions(target.id, { limit: 100 }, options);
  check(runs.status === 200, `executions ${target.id}: status ${runs.status}`);
  check(
    runs.data.totalCount === before.data.totalCount + 1,
    `executions ${target.id}: totalCount ${before.data.totalCount} -> ${runs.data.totalCount}, expected +1`,
  );
  const latest = await sharingTasks.getSharingTaskExecution(target.id, "latest", {}, options);
  check(latest.status === 200, `latest execution ${target.id}: status ${latest.status}`);
  check(latest.data?.sharingTaskID === target.id, `latest execution: sharingTaskID ${latest.data?.sharingTaskID}`);
  result.executionsBefore = before.data.totalCount;
  result.executionsAfter = runs.data.totalCount;
  result.latestExecution = { id: latest.data?.id, status: latest.data?.status };

  // GET settings.
  const settings = await sharingTasks.getSharingTasksSettings(options);
  check(settings.status === 200, `settings: status ${settings.status}`);
  check(typeof settings.data?.["enable-sharing"] === "boolean", "settings: enable-sharing is not a boolean");
  result.settings = { "enable-sharing": settings.data?.["enable-sharing"], keys: Object.keys(settings.data ?? {}).sort() };

  // DELETE another task (the last listed), then a GET of it is a 404 and the list is one shorter.
  const victim = listing.ids.findLast((id) => id !== target.id);
  if (!check(victim !== undefined, "no second task to delete")) return;
  await getTask(victim); // cached by the client: the DELETE must drop it
  const deleted = await sharingTasks.deleteSharingTask(victim, options);
  check(deleted.status === 204, `delete ${victim}: status ${deleted.status}`);
  result.deletedId = victim;
  result.deletedGetStatus = await expect404(victim);
  const shorter = await sharingTasks.getSharingTasks({ limit: 1 }, options);
  check(shorter.data.totalCount === listing.total - 1, `after delete: totalCount ${shorter.data.totalCount}, expected ${listing.total - 1}`);
  result.totalAfterDelete = shorter.data.totalCount;
}

try {
  await main();
} catch (err) {
  result.failures.push(`unexpected error: ${JSON.stringify(describeError(err))}`);
}
result.ok = result.failures.length === 0;
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
