from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Home',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('account', fields.OneToOneField('models.Account', source_field='account_id', db_constraint=True, to_field='id', related_name='home', on_delete=OnDelete.CASCADE)),
                ('lat', fields.FloatField()),
                ('lon', fields.FloatField()),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'homes', 'app': 'models', 'pk_attr': 'id', 'table_description': 'The home point of a resident, set through the API. Exact, never published.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Offer',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(null=True, unique=True, max_length=32)),
                ('ap_id', fields.CharField(unique=True, max_length=512)),
                ('url', fields.CharField(null=True, max_length=512)),
                ('author', fields.ForeignKeyField('models.Account', source_field='author_id', db_constraint=True, to_field='id', related_name='offers', on_delete=OnDelete.CASCADE)),
                ('local', fields.BooleanField(default=True)),
                ('town', fields.CharField(default='', max_length=255)),
                ('town_host', fields.CharField(null=True, max_length=255)),
                ('listed', fields.BooleanField(default=True)),
                ('visibility', fields.CharField(default='public', max_length=16)),
                ('purpose', fields.CharField(max_length=16)),
                ('kind', fields.CharField(max_length=16)),
                ('category', fields.CharField(default='', max_length=64)),
                ('title', fields.CharField(max_length=255)),
                ('description', fields.TextField(default='', unique=False)),
                ('content_html', fields.TextField(default='', unique=False)),
                ('search_text', fields.TextField(default='', unique=False)),
                ('terms', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('carpool', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('shares_total', fields.IntField(null=True)),
                ('shares_taken', fields.IntField(default=0)),
                ('available_from', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('available_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('status', fields.CharField(default='open', max_length=16)),
                ('reserved_for', fields.ForeignKeyField('models.Account', source_field='reserved_for_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('return_by', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('return_reminded_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('exact_lat', fields.FloatField(null=True)),
                ('exact_lon', fields.FloatField(null=True)),
                ('lat', fields.FloatField()),
                ('lon', fields.FloatField()),
                ('lat_band', fields.IntField(default=0)),
                ('neighbourhood', fields.CharField(default='', max_length=255)),
                ('ap_data', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('published', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('deleted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'offers', 'app': 'models', 'indexes': [Index(fields=['lat_band', 'lon', 'lat', 'status', 'expires_at', 'kind', 'purpose', 'listed', 'deleted_at', 'author_id', 'published', 'category'], name='offers_geo'), Index(fields=['published', 'lat', 'lon', 'status', 'expires_at', 'kind', 'purpose', 'listed', 'deleted_at', 'author_id', 'category'], name='offers_recent'), Index(fields=['author_id', 'published'], name='offers_author_published'), Index(fields=['status', 'expires_at'], name='offers_status_expires'), Index(fields=['return_by'], name='offers_return_by')], 'pk_attr': 'id', 'table_description': 'An offer or a request, local or received from a neighbouring town.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OfferAnswer',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('ap_id', fields.CharField(null=True, unique=True, max_length=512)),
                ('offer', fields.ForeignKeyField('models.Offer', source_field='offer_id', db_constraint=True, to_field='id', related_name='answers', on_delete=OnDelete.CASCADE)),
                ('author', fields.ForeignKeyField('models.Account', source_field='author_id', db_constraint=True, to_field='id', related_name='offer_answers', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(default='answer', max_length=16)),
                ('message', fields.TextField(default='', unique=False)),
                ('shares', fields.IntField(default=0)),
                ('state', fields.CharField(default='open', max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'offer_answers', 'app': 'models', 'indexes': [Index(fields=['offer_id', 'state'], name='offer_answers_offer_state'), Index(fields=['author_id', 'created_at'], name='offer_answers_author')], 'pk_attr': 'id', 'table_description': 'An answer to an offer: a private message, or a co-purchase share. open | accepted | withdrawn.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OfferMedia',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('offer', fields.ForeignKeyField('models.Offer', source_field='offer_id', db_constraint=True, to_field='id', related_name='media', on_delete=OnDelete.CASCADE)),
                ('path', fields.CharField(default='', max_length=512)),
                ('remote_url', fields.CharField(null=True, max_length=1024)),
                ('mime', fields.CharField(max_length=64)),
                ('width', fields.IntField(default=0)),
                ('height', fields.IntField(default=0)),
                ('size_bytes', fields.IntField(default=0)),
                ('alt_text', fields.TextField(default='', unique=False)),
                ('position', fields.IntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'offer_media', 'app': 'models', 'indexes': [Index(fields=['offer_id', 'position'], name='offer_media_offer_position')], 'pk_attr': 'id', 'table_description': 'A photo of an offer. Local files live in the media store under `path`, remote ones at `remote_url`.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OfferWord',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('offer', fields.ForeignKeyField('models.Offer', source_field='offer_id', db_constraint=True, to_field='id', related_name='words', on_delete=OnDelete.CASCADE)),
                ('word', fields.CharField(max_length=64)),
                ('kind', fields.CharField(max_length=16)),
            ],
            options={'table': 'offer_words', 'app': 'models', 'indexes': [Index(fields=['word', 'kind', 'offer_id'], name='offer_words_word'), Index(fields=['offer_id'], name='offer_words_offer')], 'pk_attr': 'id', 'table_description': "The words of an offer's search_text (at least WORD_MIN letters): an inverted index that works"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SavedSearch',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('account', fields.ForeignKeyField('models.Account', source_field='account_id', db_constraint=True, to_field='id', related_name='saved_searches', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(default='', max_length=255)),
                ('query', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('last_notified_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'saved_searches', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A search a resident keeps: new matching offers, local or remote, notify them.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OfferNotification',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('account', fields.ForeignKeyField('models.Account', source_field='account_id', db_constraint=True, to_field='id', related_name='offer_notifications', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(max_length=32)),
                ('offer', fields.ForeignKeyField('models.Offer', source_field='offer_id', db_constraint=True, to_field='id', related_name='notifications', on_delete=OnDelete.CASCADE)),
                ('answer', fields.ForeignKeyField('models.OfferAnswer', source_field='answer_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('from_account', fields.ForeignKeyField('models.Account', source_field='from_account_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('saved_search', fields.ForeignKeyField('models.SavedSearch', source_field='saved_search_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('read', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'offer_notifications', 'app': 'models', 'indexes': [Index(fields=['account_id', 'id'], name='offer_notifications_account')], 'pk_attr': 'id', 'table_description': 'Something happened to an offer that a resident should see: answer, reserved, joined, return due...'},
            bases=['Model'],
        ),
    ]
