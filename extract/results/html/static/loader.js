/* Where the page's files are: beside it (a folder: file:// or any web server), or,
   when it is opened from the bucket (objects/report/<sha256>/index.html), each under
   its own content address, objects/report/<folder>/<sha256>/<name> (docs/report.md).
   IQB_FILES, written by the builder, holds the SHA-256 of each file. The page names
   this file at both addresses, so it may run twice: the second time does nothing. */
(function () {
  'use strict';
  if (window.IQB_URL) return;
  window.IQB_FILES = {};
  window.IQB_URL = function (path) {
    var bucket = location.pathname.match(/^(.*\/objects\/report)\/[0-9a-f]{64}\/index\.html$/);
    var sha = window.IQB_FILES[path], slash = path.lastIndexOf('/');
    return bucket && sha ? bucket[1] + '/' + path.slice(0, slash) + '/' + sha + path.slice(slash) : path;
  };
  var css = document.createElement('link');
  css.rel = 'stylesheet';
  css.href = window.IQB_URL('assets/report.css');
  document.head.appendChild(css);
  ['assets/echarts.min.js', 'assets/topojson-client.min.js', 'assets/world-110m.js',
   'assets/report.js', 'data/summary.js'].forEach(function (path) {
    var s = document.createElement('script');
    s.src = window.IQB_URL(path);
    s.async = false;  /* run in this order, as plain <script> tags would */
    document.body.appendChild(s);
  });
})();
